import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import * as OTPAuth from 'otpauth'
import { outboxEvents } from '../src/events/table'
import { mailOutbox } from '../src/mail/table'
import { createRedisFlowStore } from '../src/oidc/flow-store'
import { userIdentities } from '../src/oidc/table'
import { securityEvents } from '../src/security-log/table'
import { setAdmin } from '../src/users/service'
import { users } from '../src/users/table'
import { createTestApp, type TestApp } from './support/app'
import { startTestProvider, TEST_CLIENT, type TestProvider } from './support/oidc-provider'
import { clientsOfEveryKind, type RedisKind } from './support/redis'

// Ports of this file's range: the provider, and one where nothing listens (a provider that is down).
const PROVIDER_PORT = 7400
const DOWN_PORT = 7449
const REDIRECT = 'https://app.test/oauth/done'
const PUBLIC_URL = 'http://users.test'
const CALLBACK = `${PUBLIC_URL}/api/users/oauth/test/callback/`

let provider: TestProvider
const apps: TestApp[] = []
/** The embedded default (PGlite, in-process stores), also with a provider answering garbage and a low per-address limit. */
let embedded: TestApp
let garbage: ReturnType<typeof Bun.serve>
const GARBAGE_PORT = 7448

const oidcEnv = () => ({
  OIDC_PROVIDERS: JSON.stringify([
    { name: 'test', issuer: provider.issuer, client_id: TEST_CLIENT.id, client_secret: TEST_CLIENT.secret },
    { name: 'down', issuer: `http://127.0.0.1:${DOWN_PORT}`, client_id: 'x', client_secret: 'y' },
  ]),
  OAUTH_REDIRECT_URLS: `${REDIRECT}, https://app.test/other`,
  OIDC_ALLOW_HTTP: 'true',
})

beforeAll(async () => {
  provider = await startTestProvider({ port: PROVIDER_PORT, redirectUris: [CALLBACK] })
  garbage = Bun.serve({ port: GARBAGE_PORT, hostname: '127.0.0.1', fetch: () => new Response('<html>not here</html>', { headers: { 'content-type': 'text/html' } }) })
  embedded = await oidcApp({
    driver: 'pglite',
    store: 'memory',
    env: {
      OIDC_PROVIDERS: JSON.stringify([
        { name: 'test', issuer: provider.issuer, client_id: TEST_CLIENT.id, client_secret: TEST_CLIENT.secret },
        { name: 'garbage', issuer: `http://127.0.0.1:${GARBAGE_PORT}`, client_id: 'x', client_secret: 'y' },
      ]),
      // Counted for callers with an address only: the in-process calls of the other tests have none.
      LOGIN_FAILURES_PER_ADDRESS: '2',
      TRUSTED_PROXY_HOPS: '1',
    },
  })
})
afterAll(async () => {
  for (const app of apps) await app.close()
  await provider?.close()
  await garbage?.stop(true)
})

async function oidcApp(options: Parameters<typeof createTestApp>[0] = {}) {
  const app = await createTestApp({ label: 'oidc', ...options, env: { ...oidcEnv(), ...options.env } })
  apps.push(app)
  return app
}

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())
const uniqueLogin = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`
const pathOf = (url: string) => {
  const parsed = new URL(url)
  return `${parsed.pathname}${parsed.search}`
}

/** The flow as a frontend and a browser drive it, one app at a time. */
function flows(t: () => TestApp) {
  /** The cookie that binds a sign-in to the browser that started it, as this browser keeps it. */
  let browserCookie: string | undefined
  const cookieHeader = () => (browserCookie ? { headers: { cookie: browserCookie } } : {})
  /** GET authorize: the provider's URL to open. */
  async function start(redirectUri = REDIRECT, name = 'test') {
    const response = await t().call('GET', `/api/users/oauth/${name}/authorize/?redirect_uri=${encodeURIComponent(redirectUri)}`, cookieHeader())
    expect(response.status).toBe(302)
    const [set] = response.headers.getSetCookie()
    if (set) browserCookie = set.split(';')[0]
    return response.headers.get('location')!
  }
  /** The provider's callback to the service, as the browser follows it (with its cookie unless `from` says another); the service's redirect back. */
  async function callback(callbackUrl: string, from: { cookie?: string } = {}) {
    const headers = 'cookie' in from ? (from.cookie ? { headers: { cookie: from.cookie } } : {}) : cookieHeader()
    return t().call('GET', pathOf(callbackUrl), headers)
  }
  /** A whole sign-in at the provider as `login`: the query the frontend's redirect URL receives. */
  async function signIn(login: string, authorizationUrl?: string) {
    const at = await provider.signIn(authorizationUrl ?? (await start()), login)
    expect(at).toStartWith(CALLBACK)
    const back = await callback(at)
    expect(back.status).toBe(302)
    const location = back.headers.get('location')!
    expect(location).toStartWith(`${REDIRECT}?`)
    return new URL(location).searchParams
  }
  /** The code's exchange; `token`, the caller's access token, is what a link's code needs. */
  const exchange = (code: string, token?: string) => t().call('POST', '/api/users/oauth/token/', { body: { code }, token })
  /** Signs in as `login` and exchanges the code (as `token`'s user, for a link): the token answer. */
  async function signInAndExchange(login: string, authorizationUrl?: string, token?: string) {
    const back = await signIn(login, authorizationUrl)
    expect(back.get('error')).toBeNull()
    return exchange(back.get('code')!, token)
  }
  return { start, callback, signIn, exchange, signInAndExchange }
}

/** The flow on each store: Redis with Postgres, the Redis Cluster, and the embedded default (PGlite, in process). */
const STORES: { name: string; app: () => Promise<TestApp> }[] = [
  { name: 'Redis and Postgres', app: () => oidcApp({ store: 'redis' }) },
  { name: 'Redis Cluster', app: () => oidcApp({ store: 'cluster' }) },
  { name: 'the embedded default (PGlite, in-process store)', app: async () => embedded },
]

for (const { name, app } of STORES) {
  describe(`a whole sign-in on ${name}`, () => {
    let t: TestApp
    beforeAll(async () => {
      t = await app()
    })
    const flow = flows(() => t)

    test('a new user signs up with the provider, gets a normal session, and the code works once', async () => {
      const login = uniqueLogin('new')
      provider.accounts.set(login, { email: `${login}@Example.com`, email_verified: true, given_name: 'Ann', family_name: 'Smith' })
      const back = await flow.signIn(login)
      expect([...back.keys()]).toEqual(['code'])
      const code = back.get('code')!
      const exchanges = await Promise.all(Array.from({ length: 5 }, () => flow.exchange(code)))
      // Of five exchanges racing, exactly one gets the session.
      expect(exchanges.map((answer) => answer.status).sort()).toEqual([200, 400, 400, 400, 400])
      const tokens = exchanges.find((answer) => answer.status === 200)!.body
      expect(exchanges.find((answer) => answer.status === 400)!.body).toEqual({ code: ['Invalid or expired code.'] })
      expect(claims(tokens.access).amr).toEqual(['oidc'])
      const me = await t.call('GET', '/api/users/me/', { token: tokens.access })
      expect(me.body).toMatchObject({ email: `${login}@example.com`, full_name: 'Ann Smith', email_verified: true })
      // A normal session: it rotates and ends like a login's.
      const rotated = await t.call('POST', '/api/users/refresh/', { body: { refresh: tokens.refresh } })
      expect(rotated.status).toBe(200)
      expect(claims(rotated.body.access).amr).toEqual(['oidc'])
      expect((await t.call('POST', '/api/users/logout/', { token: rotated.body.access, body: { refresh: rotated.body.refresh } })).status).toBe(204)
      expect((await t.call('GET', '/api/users/me/', { token: rotated.body.access })).status).toBe(401)
    })
  })
}

describe('sign-in with a provider', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await oidcApp()
  })
  const flow = flows(() => t)
  const eventsOf = (userId: string) => t.deps.db.select().from(securityEvents).where(eq(securityEvents.userId, userId))

  test('the authorization request carries state, nonce and an S256 PKCE challenge, whose verifier the token request sends', async () => {
    const url = new URL(await flow.start())
    expect(url.origin).toBe(provider.issuer)
    const params = url.searchParams
    expect(params.get('redirect_uri')).toBe(CALLBACK)
    expect(params.get('scope')).toBe('openid email profile')
    expect(params.get('code_challenge_method')).toBe('S256')
    for (const name of ['state', 'nonce', 'code_challenge']) expect(params.get(name)!.length).toBeGreaterThanOrEqual(43)
    provider.state.tokenRequests.length = 0
    const answer = await flow.signInAndExchange(uniqueLogin('pkce'), url.href)
    expect(answer.status).toBe(200)
    const [sent] = provider.state.tokenRequests
    expect(createHash('sha256').update(String(sent!.code_verifier)).digest('base64url')).toBe(params.get('code_challenge')!)
  })

  test('a user made by a provider has no password: a password login fails as wrong credentials, and the events are written', async () => {
    const login = uniqueLogin('nopass')
    provider.accounts.set(login, { email: `${login}@example.com`, email_verified: false, name: 'Bo' })
    const answer = await flow.signInAndExchange(login)
    expect(answer.status).toBe(200)
    const userId = claims(answer.body.access).user_id
    const [row] = await t.deps.db.select().from(users).where(eq(users.id, userId))
    expect(row).toMatchObject({ fullName: 'Bo', emailVerified: false })
    expect(row!.passwordHash).toStartWith('!')
    for (const password of ['', '!', row!.passwordHash, row!.passwordHash.slice(1)]) {
      const refused = await t.call('POST', '/api/users/login/', { body: { email: `${login}@example.com`, password: password || 'x' } })
      expect(refused.status).toBe(400)
      expect(refused.body).toEqual({ email: ['Invalid email or password.'], password: ['Invalid email or password.'] })
    }
    const created = await t.deps.db.select().from(outboxEvents).where(and(eq(outboxEvents.userId, userId), eq(outboxEvents.name, 'user.created')))
    expect(created).toHaveLength(1)
    const events = await eventsOf(userId)
    expect(events.find((event) => event.type === 'register')?.detail).toEqual({ method: 'oidc', provider: 'test' })
    expect(events.find((event) => event.type === 'login')?.detail).toEqual({ method: 'oidc' })
    const [identity] = await t.deps.db.select().from(userIdentities).where(eq(userIdentities.userId, userId))
    expect(identity).toMatchObject({ provider: 'test', subject: login, email: `${login}@example.com`, emailVerified: false })
  })

  test('the name comes from given and family names, else the email, cut to 250 characters and cleaned of NUL', async () => {
    const cases: [Parameters<typeof provider.accounts.set>[1], string][] = [
      [{ given_name: 'Cy', family_name: 'Long' }, 'Cy Long'],
      [{}, 'local-part'],
      [{ name: `${'é'.repeat(300)}` }, 'é'.repeat(250)],
      [{ name: 'a\u0000b' }, 'ab'],
    ]
    for (const [names, expected] of cases) {
      const login = uniqueLogin('name')
      const email = names.name || names.given_name ? `${login}@example.com` : `local-part@${login}.example.com`
      provider.accounts.set(login, { email, email_verified: true, ...names })
      const answer = await flow.signInAndExchange(login)
      expect(answer.status).toBe(200)
      expect((await t.call('GET', '/api/users/me/', { token: answer.body.access })).body.full_name).toBe(expected)
    }
  })

  test('a linked identity signs in its user again', async () => {
    const login = uniqueLogin('again')
    const first = await flow.signInAndExchange(login)
    const second = await flow.signInAndExchange(login)
    expect(claims(second.body.access).user_id).toBe(claims(first.body.access).user_id)
    expect(claims(second.body.access).sid).not.toBe(claims(first.body.access).sid)
  })

  test('the email comes from userinfo when the ID token has none', async () => {
    const login = uniqueLogin('userinfo')
    provider.accounts.set(login, { email: `${login}@example.com`, email_verified: true, emailOnlyInUserinfo: true })
    const before = provider.state.userinfoRequests
    const answer = await flow.signInAndExchange(login)
    expect(answer.status).toBe(200)
    expect(provider.state.userinfoRequests).toBe(before + 1)
    expect((await t.call('GET', '/api/users/me/', { token: answer.body.access })).body.email).toBe(`${login}@example.com`)
  })

  test('no email at all redirects with error=email_required and makes no user', async () => {
    const login = uniqueLogin('noemail')
    provider.accounts.set(login, { name: 'Nobody' })
    const back = await flow.signIn(login)
    expect(Object.fromEntries(back)).toEqual({ error: 'email_required' })
    expect(await t.deps.db.select().from(userIdentities).where(eq(userIdentities.subject, login))).toEqual([])
  })

  test('a subject longer than OIDC allows (255) is an invalid ID token, not a 500', async () => {
    const login = `${uniqueLogin('long')}${'s'.repeat(300)}`
    provider.accounts.set(login, { email: `${uniqueLogin('long')}@example.com`, email_verified: true })
    const back = await flow.signIn(login)
    expect(Object.fromEntries(back)).toEqual({ error: 'invalid_id_token' })
  })

  test('a user who refuses at the provider comes back with error=access_denied only', async () => {
    const at = await provider.signIn(await flow.start(), uniqueLogin('deny'), 'deny')
    const back = await flow.callback(at)
    expect(back.status).toBe(302)
    expect(back.headers.get('location')).toBe(`${REDIRECT}?error=access_denied`)
  })

  describe('the linking rule', () => {
    async function accountWithEmail(verified: boolean) {
      const user = await t.registerUser()
      if (verified) await t.deps.db.update(users).set({ emailVerified: true }).where(eq(users.id, user.id))
      return user
    }

    test('both sides verified: the identity is linked to the existing account and signs it in', async () => {
      const user = await accountWithEmail(true)
      const login = uniqueLogin('link')
      provider.accounts.set(login, { email: user.email.toUpperCase(), email_verified: true })
      const answer = await flow.signInAndExchange(login)
      expect(answer.status).toBe(200)
      expect(claims(answer.body.access).user_id).toBe(user.id)
      const listed = await t.call('GET', '/api/users/identities/', { token: user.access })
      expect(listed.body).toEqual([{ id: expect.any(String), provider: 'test', email: user.email, created_at: expect.any(String), last_used_at: expect.any(String) }])
      expect((await eventsOf(user.id)).filter((event) => event.type === 'identity_linked').map((event) => event.detail)).toEqual([{ provider: 'test' }])
    })

    test('the provider does not say the email is verified: the exchange answers 409 account_exists and nothing is linked', async () => {
      const user = await accountWithEmail(true)
      const login = uniqueLogin('unverified')
      provider.accounts.set(login, { email: user.email, email_verified: false })
      const answer = await flow.signInAndExchange(login)
      expect(answer.status).toBe(409)
      expect(answer.body).toEqual({ detail: expect.any(String), code: 'account_exists' })
      expect(await t.deps.db.select().from(userIdentities).where(eq(userIdentities.userId, user.id))).toEqual([])
    })

    test("the account's own email is not verified: 409 account_exists, however sure the provider is", async () => {
      const user = await accountWithEmail(false)
      const login = uniqueLogin('takeover')
      provider.accounts.set(login, { email: user.email, email_verified: true })
      const answer = await flow.signInAndExchange(login)
      expect(answer.status).toBe(409)
      expect(answer.body.code).toBe('account_exists')
      expect(await t.deps.db.select().from(userIdentities).where(eq(userIdentities.userId, user.id))).toEqual([])
      // The account's owner still logs in with the password.
      expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
    })

    test('a signed-in user links the provider from settings, whatever its email, and the code signs them in', async () => {
      const user = await accountWithEmail(false)
      const login = uniqueLogin('settings')
      provider.accounts.set(login, { email: `${login}@elsewhere.example`, email_verified: false })
      const started = await t.call('POST', '/api/users/identities/test/', { token: user.access, body: { redirect_uri: REDIRECT } })
      expect(started.status).toBe(200)
      const answer = await flow.signInAndExchange(login, started.body.authorization_url, user.access)
      expect(answer.status).toBe(200)
      expect(claims(answer.body.access).user_id).toBe(user.id)
      expect((await t.call('GET', '/api/users/identities/', { token: user.access })).body.map((identity: { email: string }) => identity.email)).toEqual([
        `${login}@elsewhere.example`,
      ])
      // Now the identity signs in that user by itself.
      const again = await flow.signInAndExchange(login)
      expect(claims(again.body.access).user_id).toBe(user.id)

      // Another user cannot link the same provider account.
      const other = await t.registerUser()
      const stolen = await t.call('POST', '/api/users/identities/test/', { token: other.access, body: { redirect_uri: REDIRECT } })
      const back = await flow.signIn(login, stolen.body.authorization_url)
      expect(Object.fromEntries(back)).toEqual({ error: 'identity_in_use' })
      expect((await t.call('GET', '/api/users/identities/', { token: other.access })).body).toEqual([])
    })

    test("a link's URL completed by someone else links nothing: its code links only with the access token of the user who started it", async () => {
      // The attacker starts a link and hands its URL to a victim who is signed in at the provider.
      const attacker = await t.registerUser()
      const victim = await t.registerUser()
      const victimLogin = uniqueLogin('link-victim')
      const linkUrl = async () => (await t.call('POST', '/api/users/identities/test/', { token: attacker.access, body: { redirect_uri: REDIRECT } })).body.authorization_url
      const identitiesOf = (access: string) => t.call('GET', '/api/users/identities/', { token: access })

      // The victim's frontend exchanges the code with the victim's own token, or with none: refused, and the code is spent.
      const asVictim = await flow.signIn(victimLogin, await linkUrl())
      const refused = await flow.exchange(asVictim.get('code')!, victim.access)
      expect([refused.status, refused.body.code]).toEqual([403, 'link_not_yours'])
      expect((await flow.exchange(asVictim.get('code')!, attacker.access)).status).toBe(400)
      const anonymous = await flow.signIn(victimLogin, await linkUrl())
      expect((await flow.exchange(anonymous.get('code')!)).status).toBe(401)
      expect((await identitiesOf(attacker.access)).body).toEqual([])
      expect((await identitiesOf(victim.access)).body).toEqual([])
      // The victim's provider account is still nobody's: signing in with it makes a new user, not the attacker.
      const own = await flow.signInAndExchange(victimLogin)
      expect(claims(own.body.access).user_id).not.toBe(attacker.id)
    })

    test('linking needs a token and an allowed redirect URL', async () => {
      expect((await t.call('POST', '/api/users/identities/test/', { body: { redirect_uri: REDIRECT } })).status).toBe(401)
      const user = await t.registerUser()
      const refused = await t.call('POST', '/api/users/identities/test/', { token: user.access, body: { redirect_uri: 'https://evil.test/' } })
      expect(refused.status).toBe(400)
      expect(Object.keys(refused.body)).toEqual(['redirect_uri'])
    })

    test("a password reset unlinks what does not vouch for the address: a careless provider's sign-up does not outlive the owner's reset", async () => {
      // Someone signs up with the victim's address at a provider that does not check it, before the victim does.
      const email = `${uniqueLogin('victim')}@example.com`
      const squatter = uniqueLogin('squatter')
      provider.accounts.set(squatter, { email, email_verified: false })
      const squatted = await flow.signInAndExchange(squatter)
      expect(squatted.status).toBe(200)
      const access = squatted.body.access
      // Two more identities: one whose provider proves the same address (kept), one with another address (unlinked).
      const [proven, elsewhere] = [uniqueLogin('proven'), uniqueLogin('elsewhere')]
      provider.accounts.set(proven, { email, email_verified: true })
      provider.accounts.set(elsewhere, { email: `${elsewhere}@example.com`, email_verified: true })
      for (const login of [proven, elsewhere]) {
        const started = await t.call('POST', '/api/users/identities/test/', { token: access, body: { redirect_uri: REDIRECT } })
        expect((await flow.signInAndExchange(login, started.body.authorization_url, access)).status).toBe(200)
      }
      // The mailbox's owner finds the address taken and resets the password.
      expect((await t.call('POST', '/api/users/password/reset/', { body: { email } })).status).toBe(202)
      const [mail] = await t.deps.db.select().from(mailOutbox).where(and(eq(mailOutbox.toAddress, email), eq(mailOutbox.kind, 'password_reset')))
      const reset = await t.call('POST', '/api/users/password/reset/confirm/', { body: { token: String((mail!.payload as { token: string }).token), password: 'the-owners-own-passphrase' } })
      expect(reset.status).toBe(200)
      const left = await t.call('GET', '/api/users/identities/', { token: reset.body.access })
      expect(left.body.map((identity: { email: string }) => identity.email)).toEqual([email])
      // The squatter's way in is gone: the provider's unproven email now meets a verified account.
      expect((await flow.signInAndExchange(squatter)).body.code).toBe('account_exists')
      const userId = claims(reset.body.access).user_id
      expect(claims((await flow.signInAndExchange(elsewhere)).body.access).user_id).not.toBe(userId)
      const unlinked = (await eventsOf(userId)).filter((event) => event.type === 'identity_unlinked').map((event) => event.detail)
      expect(unlinked).toEqual([
        { provider: 'test', reason: 'password_reset' },
        { provider: 'test', reason: 'password_reset' },
      ])
    })
  })

  describe('unlinking', () => {
    test('the last way into an account cannot be unlinked; with another one it can, and another user cannot touch it', async () => {
      const first = uniqueLogin('unlink-a')
      const signedIn = await flow.signInAndExchange(first)
      const access = signedIn.body.access
      const [only] = (await t.call('GET', '/api/users/identities/', { token: access })).body
      const refused = await t.call('DELETE', `/api/users/identities/${only.id}/`, { token: access })
      expect(refused.status).toBe(409)
      expect(refused.body.code).toBe('last_sign_in_method')

      const started = await t.call('POST', '/api/users/identities/test/', { token: access, body: { redirect_uri: REDIRECT } })
      expect((await flow.signInAndExchange(uniqueLogin('unlink-b'), started.body.authorization_url, access)).status).toBe(200)
      const stranger = await t.registerUser()
      expect((await t.call('DELETE', `/api/users/identities/${only.id}/`, { token: stranger.access })).status).toBe(404)
      expect((await t.call('DELETE', `/api/users/identities/${only.id}/`, { token: access })).status).toBe(204)
      expect((await t.call('DELETE', `/api/users/identities/${only.id}/`, { token: access })).status).toBe(404)
      const left = (await t.call('GET', '/api/users/identities/', { token: access })).body
      expect(left).toHaveLength(1)
      expect((await t.call('DELETE', `/api/users/identities/${left[0].id}/`, { token: access })).body.code).toBe('last_sign_in_method')
      // The unlinked identity is a stranger now: signing in with it makes no session for this user.
      const userId = claims(access).user_id
      const events = await eventsOf(userId)
      expect(events.filter((event) => event.type === 'identity_unlinked').map((event) => event.detail)).toEqual([{ provider: 'test' }])
    })

    test('a user with a password may unlink their only identity', async () => {
      const user = await t.registerUser()
      const started = await t.call('POST', '/api/users/identities/test/', { token: user.access, body: { redirect_uri: REDIRECT } })
      expect((await flow.signInAndExchange(uniqueLogin('haspass'), started.body.authorization_url, user.access)).status).toBe(200)
      const [identity] = (await t.call('GET', '/api/users/identities/', { token: user.access })).body
      expect((await t.call('DELETE', `/api/users/identities/${identity.id}/`, { token: user.access })).status).toBe(204)
    })
  })

  test('second factors apply: an account with TOTP gets mfa_required, then a session whose amr says oidc and otp', async () => {
    const user = await t.registerUser()
    const enrol = await t.call('POST', '/api/users/mfa/totp/', { token: user.access, body: { current_password: user.password } })
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret) })
    expect((await t.call('POST', `/api/users/mfa/totp/${enrol.body.id}/confirm/`, { token: user.access, body: { code: totp.generate({ timestamp: t.clock.now() }) } })).status).toBe(200)
    t.clock.advance(30_000)
    const started = await t.call('POST', '/api/users/identities/test/', { token: user.access, body: { redirect_uri: REDIRECT } })
    const stepUp = await flow.signInAndExchange(uniqueLogin('mfa'), started.body.authorization_url, user.access)
    expect(stepUp.status).toBe(403)
    const { mfa_token: mfaToken, ...refusal } = stepUp.body
    expect(refusal).toMatchObject({ code: 'mfa_required', methods: ['totp', 'recovery_code'] })
    const done = await t.call('POST', '/api/users/login/mfa/', { body: { mfa_token: mfaToken, code: totp.generate({ timestamp: t.clock.now() }) } })
    expect(done.status).toBe(200)
    expect(claims(done.body.access)).toMatchObject({ user_id: user.id, amr: ['oidc', 'otp'] })
    const logins = (await eventsOf(user.id)).filter((event) => event.type === 'login').map((event) => event.detail)
    expect(logins).toContainEqual({ method: 'oidc+otp' })
  })

  test('a disabled account cannot sign in with its provider', async () => {
    const admin = await t.registerUser()
    await setAdmin(t.deps, admin.email, true)
    const login = uniqueLogin('disabled')
    const first = await flow.signInAndExchange(login)
    const userId = claims(first.body.access).user_id
    expect((await t.call('POST', `/api/users/admin/users/${userId}/disable/`, { token: admin.access, body: { reason: 'spam' } })).status).toBe(200)
    const refused = await flow.signInAndExchange(login)
    expect(refused.status).toBe(400)
    expect(refused.body).toEqual({ non_field_errors: ['This account cannot sign in.'] })
  })

  describe('nothing can be replayed or redirected elsewhere', () => {
    test('a redirect_uri not on the list is a 400 before any redirect, prefixes and look-alikes included', async () => {
      for (const uri of ['https://evil.test/oauth/done', `${REDIRECT}/../../evil`, `${REDIRECT}x`, `${REDIRECT}?next=https://evil.test`, `${REDIRECT}#x`, 'https://app.test.evil.test/oauth/done', 'javascript:alert(1)', '/oauth/done']) {
        const response = await t.call('GET', `/api/users/oauth/test/authorize/?redirect_uri=${encodeURIComponent(uri)}`)
        expect(response.status).toBe(400)
        expect(response.headers.get('location')).toBeNull()
        expect(Object.keys(response.body)).toEqual(['redirect_uri'])
      }
      // The same URL written differently (scheme and host case, a default port) is the same URL.
      expect((await t.call('GET', `/api/users/oauth/test/authorize/?redirect_uri=${encodeURIComponent('HTTPS://APP.test:443/oauth/done')}`)).status).toBe(302)
    })

    test('a tampered, unknown or missing state is a JSON 400, never a redirect', async () => {
      const at = new URL(await provider.signIn(await flow.start(), uniqueLogin('tamper')))
      const state = at.searchParams.get('state')!
      for (const bad of [`${state}x`, state.slice(1), 'unknown', '']) {
        const tampered = new URL(at)
        tampered.searchParams.set('state', bad)
        const response = await flow.callback(tampered.href)
        expect(response.status).toBe(400)
        expect(response.headers.get('location')).toBeNull()
        expect(Object.keys(response.body)).toEqual(['state'])
      }
      const missing = new URL(at)
      missing.searchParams.delete('state')
      expect((await flow.callback(missing.href)).status).toBe(400)
      // The real state still works once.
      expect((await flow.callback(at.href)).status).toBe(302)
    })

    test('a callback in a browser that did not start the sign-in is refused: no login CSRF with an attacker-made callback URL', async () => {
      const start = await t.call('GET', `/api/users/oauth/test/authorize/?redirect_uri=${encodeURIComponent(REDIRECT)}`)
      const cookie = start.headers.getSetCookie()[0]!
      expect(cookie).toMatch(/^oidc_browser=[\w-]{43}; Max-Age=600; Path=\/api\/users\/oauth\/; HttpOnly; SameSite=Lax$/)
      // The attacker signs in at the provider as themselves and hands the callback URL to the victim's browser.
      const at = await provider.signIn(start.headers.get('location')!, uniqueLogin('csrf'))
      for (const from of [{}, { cookie: 'oidc_browser=another-browsers-key-aaaaaaaaaaaaaaaaaaaaaaaaaaa' }]) {
        const refused = await flow.callback(at, from)
        expect(refused.status).toBe(400)
        expect(refused.headers.get('location')).toBeNull()
        expect(Object.keys(refused.body)).toEqual(['state'])
        expect(refused.headers.getSetCookie()).toEqual([])
      }
      // Refused, the state is spent: not even the browser that started it can use it now.
      expect((await flow.callback(at, { cookie: cookie.split(';')[0] })).status).toBe(400)
    })

    test('a replayed state is refused, and so is a state used at another provider’s callback', async () => {
      const at = await provider.signIn(await flow.start(), uniqueLogin('replay'))
      expect((await flow.callback(at)).status).toBe(302)
      const replay = await flow.callback(at)
      expect(replay.status).toBe(400)
      expect(Object.keys(replay.body)).toEqual(['state'])

      const other = await provider.signIn(await flow.start(), uniqueLogin('swap'))
      const elsewhere = await flow.callback(other.replace('/oauth/test/', '/oauth/down/'))
      expect(elsewhere.status).toBe(400)
    })

    test('an unknown code is refused (a used one is, in the races above; an expired one, on the embedded app below)', async () => {
      expect((await flow.exchange('not-a-code')).body).toEqual({ code: ['Invalid or expired code.'] })
    })
  })

  describe('every check of the ID token', () => {
    // Each would sign the user in if its check were missing: the rewritten token is otherwise valid.
    const cases = [
      { name: 'a wrong nonce', tamper: { signer: 'provider' as const, claims: (payload: Record<string, unknown>) => ({ ...payload, nonce: 'another-sign-in' }) } },
      {
        name: 'an expired ID token',
        tamper: { signer: 'provider' as const, claims: (payload: Record<string, unknown>) => ({ ...payload, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }) },
      },
      { name: 'an ID token signed by another key', tamper: { signer: 'other' as const, claims: (payload: Record<string, unknown>) => payload } },
      { name: 'an ID token for another client', tamper: { signer: 'provider' as const, claims: (payload: Record<string, unknown>) => ({ ...payload, aud: 'another-client' }) } },
      { name: 'an ID token from another issuer', tamper: { signer: 'provider' as const, claims: (payload: Record<string, unknown>) => ({ ...payload, iss: 'https://evil.test' }) } },
    ]
    for (const { name, tamper } of cases)
      test(`${name} redirects with error=invalid_id_token and signs no one in`, async () => {
        const login = uniqueLogin('forged')
        provider.state.tamper = tamper
        const back = await flow.signIn(login)
        expect(provider.state.tamper).toBeUndefined()
        expect(Object.fromEntries(back)).toEqual({ error: 'invalid_id_token' })
        expect(await t.deps.db.select().from(userIdentities).where(eq(userIdentities.subject, login))).toEqual([])
      })

    test('the untouched token still signs in (the rewriting itself is not what fails)', async () => {
      provider.state.tamper = { signer: 'provider', claims: (payload) => payload }
      expect((await flow.signInAndExchange(uniqueLogin('resigned'))).status).toBe(200)
    })
  })

  describe('providers that cannot be used', () => {
    test('an unreachable provider is a 503 provider_unavailable, at once while its retry is not due', async () => {
      for (let i = 0; i < 2; i++) {
        const started = performance.now()
        const response = await t.call('GET', `/api/users/oauth/down/authorize/?redirect_uri=${encodeURIComponent(REDIRECT)}`)
        expect(response.status).toBe(503)
        expect(response.body).toEqual({ detail: expect.any(String), code: 'provider_unavailable' })
        expect(response.headers.get('retry-after')).toBe('5')
        expect(performance.now() - started).toBeLessThan(1_000)
      }
    })

    test('a provider answering garbage is a 502 provider_invalid', async () => {
      const response = await embedded.call('GET', `/api/users/oauth/garbage/authorize/?redirect_uri=${encodeURIComponent(REDIRECT)}`)
      expect(response.status).toBe(502)
      expect(response.body).toEqual({ detail: expect.any(String), code: 'provider_invalid' })
    })

    test('an unknown provider is a 404', async () => {
      const response = await t.call('GET', `/api/users/oauth/nope/authorize/?redirect_uri=${encodeURIComponent(REDIRECT)}`)
      expect(response.status).toBe(404)
      expect(response.body.code).toBe('provider_not_found')
    })
  })

  test('starts and exchanges are limited per address', async () => {
    // The address comes from X-Forwarded-For behind one proxy (an in-process call has no socket).
    const from = { headers: { 'x-forwarded-for': '203.0.113.9' } }
    const path = `/api/users/oauth/test/authorize/?redirect_uri=${encodeURIComponent(REDIRECT)}`
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await embedded.call('GET', path, from)).status)
    expect(statuses).toEqual([302, 302, 429])
    const wrong = []
    for (let i = 0; i < 3; i++) wrong.push((await embedded.call('POST', '/api/users/oauth/token/', { ...from, body: { code: 'wrong' } })).status)
    expect(wrong).toEqual([400, 400, 429])
  })
})

describe('the embedded default keeps the code one minute', () => {
  test('an exchange past a minute is refused', async () => {
    const flow = flows(() => embedded)
    const back = await flow.signIn(uniqueLogin('expired'))
    embedded.clock.advance(61_000)
    expect((await flow.exchange(back.get('code')!)).body).toEqual({ code: ['Invalid or expired code.'] })
  })
})

describe('the flow store on Redis and the cluster', () => {
  const prefix = `test:oidc-flows:${crypto.randomUUID().slice(0, 8)}:`
  const clients = clientsOfEveryKind(prefix)
  for (const kind of ['redis', 'cluster'] as RedisKind[])
    test(`${kind}: a value is taken once, however many race for it, and lives its TTL`, async () => {
      const store = createRedisFlowStore({ client: clients[kind], prefix })
      await store.put('code:a', 'value', 60)
      const taken = await Promise.all(Array.from({ length: 10 }, () => store.take('code:a')))
      expect(taken.filter(Boolean)).toEqual(['value'])
      await store.put('code:b', 'value', 1)
      expect(await clients[kind].ttl(`${prefix}oidc:${createHash('sha256').update('code:b').digest('base64url')}`)).toBe(1)
    })
})
