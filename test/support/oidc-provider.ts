import { createServer, type Server } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose'
import Provider, { type KoaContextWithOIDC } from 'oidc-provider'

/** What the provider says about one of its users; the login typed into its form is the `sub`. */
export type TestAccount = { email?: string; email_verified?: boolean; name?: string; given_name?: string; family_name?: string; emailOnlyInUserinfo?: boolean }

/** How a test rewrites the ID token of the next token answer: new claims, signed by the provider's key or another. */
export type IdTokenTamper = { claims: (payload: JWTPayload) => JWTPayload; signer: 'provider' | 'other' }

export const TEST_CLIENT = { id: 'users-service', secret: 'a-client-secret-for-the-tests' }

/**
 * A real OpenID provider (`oidc-provider`, certified) in this process, on `port`: its development login
 * and consent pages accept any login (which becomes the `sub`) and any password. A middleware in front of
 * its token endpoint records what the client sent and, when a test asks, rewrites the ID token.
 */
export async function startTestProvider(options: { port: number; redirectUris: string[] }) {
  const issuer = `http://127.0.0.1:${options.port}`
  const accounts = new Map<string, TestAccount>()
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const other = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }
  const provider = new Provider(issuer, {
    clients: [{ client_id: TEST_CLIENT.id, client_secret: TEST_CLIENT.secret, redirect_uris: options.redirectUris }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['a-cookie-key-for-the-tests'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
    // The ID token carries the scopes' claims, as Google's does; an account can keep its email for userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      async claims(use: string) {
        const { emailOnlyInUserinfo, ...account } = accounts.get(sub) ?? { email: `${sub}@example.com`, email_verified: true }
        if (emailOnlyInUserinfo && use === 'id_token') return { sub, name: account.name }
        return { sub, ...account }
      },
    }),
  })
  const state = {
    tamper: undefined as IdTokenTamper | undefined,
    tokenRequests: [] as Record<string, unknown>[],
    userinfoRequests: 0,
  }
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next()
    if (ctx.path === '/me') state.userinfoRequests++
    if (ctx.path !== '/token' || ctx.method !== 'POST') return
    state.tokenRequests.push({ ...(ctx.oidc?.params ?? {}) })
    const body = ctx.body as { id_token?: string } | undefined
    const tamper = state.tamper
    if (!tamper || !body?.id_token) return
    state.tamper = undefined
    const header = decodeProtectedHeader(body.id_token)
    const key = tamper.signer === 'provider' ? privateKey : other.privateKey
    body.id_token = await new SignJWT(tamper.claims(decodeJwt(body.id_token))).setProtectedHeader({ alg: 'RS256', kid: header.kid }).sign(key)
  })
  // The warnings about a development setup say what this is meant to be.
  provider.on('server_error', (_ctx: unknown, err: Error) => console.error('test provider error', err))
  const server: Server = createServer(provider.callback())
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve))

  /**
   * Drives the provider's pages as a browser would, from its authorization URL: follows redirects by hand
   * (keeping its cookies), submits the login form with `login` and the consent form, and answers the URL it
   * finally redirects to (the client's callback).
   */
  async function signIn(authorizationUrl: string, login: string, choice: 'consent' | 'deny' = 'consent') {
    const jar = new Map<string, string>()
    const send = async (url: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers)
      headers.set('cookie', [...jar].map(([name, value]) => `${name}=${value}`).join('; '))
      const response = await fetch(url, { ...init, headers, redirect: 'manual' })
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(';')
        const at = pair!.indexOf('=')
        jar.set(pair!.slice(0, at), pair!.slice(at + 1))
      }
      return response
    }
    let response = await send(authorizationUrl)
    for (let step = 0; step < 12; step++) {
      const location = response.headers.get('location')
      if (location) {
        const next = new URL(location, issuer)
        if (next.origin !== issuer) return next.href
        response = await send(next.href)
        continue
      }
      const page = await response.text()
      const action = page.match(/<form[^>]*action="([^"]+)"/)?.[1]
      const prompt = page.match(/name="prompt" value="(\w+)"/)?.[1]
      if (!action || !prompt) throw new Error(`the provider answered ${response.status} without a form: ${page.slice(0, 300)}`)
      const form: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt }
      // A denial is the provider's abort: the client gets error=access_denied.
      const target = choice === 'deny' && prompt === 'consent' ? `${new URL(action, issuer).href}/abort` : new URL(action, issuer).href
      response =
        target.endsWith('/abort')
          ? await send(target)
          : await send(target, { method: 'POST', body: new URLSearchParams(form), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    }
    throw new Error('the provider did not redirect back')
  }

  return {
    issuer,
    accounts,
    state,
    signIn,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

export type TestProvider = Awaited<ReturnType<typeof startTestProvider>>
