import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import type { BrowserContext, CDPSession, Page } from 'playwright-core'
import { createTestApp, type TestApp } from '../support/app'
import { launchChromium, SLOW } from '../support/chromium'

// `localhost` is a secure context over http, which WebAuthn requires; the service listens on 127.0.0.1
// only, so localhost must not try ::1 first.
const LOCALHOST_FLAGS = ['--host-resolver-rules=MAP localhost 127.0.0.1']

let t: TestApp
let server: ReturnType<TestApp['app']['listen']>
let origin: string
let browser: BrowserContext
let closeBrowser: (() => Promise<void>) | undefined
let page: Page

/** A port free a moment ago: the relying party's origin must be configured before the app is built. */
function freePort() {
  const probe = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response() })
  const port = probe.port!
  probe.stop(true)
  return port
}

beforeAll(async () => {
  const port = freePort()
  origin = `http://localhost:${port}`
  t = await createTestApp({
    driver: 'pglite',
    store: 'memory',
    label: 'passkeys',
    env: { WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: origin, WEBAUTHN_RP_NAME: 'Acme' },
  })
  server = t.app.listen({ port, hostname: '127.0.0.1' })

  const bundle = await Bun.build({ entrypoints: [join(import.meta.dir, 'passkey-page.ts')], target: 'browser', format: 'iife' })
  if (!bundle.success) throw new AggregateError(bundle.logs, 'could not bundle the test page')
  const script = await bundle.outputs[0]!.text()

  ;({ browser, close: closeBrowser } = await launchChromium(LOCALHOST_FLAGS))
  // The page comes from the test, under the service's origin; every API call goes to the running service.
  await browser.route(`${origin}/passkey-test`, (route) =>
    route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>passkeys</title><script>${script}</script>` }),
  )
  page = await browser.newPage()
  cdp = await browser.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await page.goto(`${origin}/passkey-test`)
}, SLOW)

let cdp: CDPSession
let authenticatorId: string | undefined

/**
 * A new, empty virtual authenticator in place of the last one: asked for any passkey of the site, an
 * authenticator holding several (an earlier test's) may answer with any of them.
 */
async function freshAuthenticator() {
  if (authenticatorId) await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId })
  ;({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  }))
}

afterAll(async () => {
  await closeBrowser?.()
  await server?.stop()
  await t?.close()
})

type Answer = { status: number; body: any }

/** Registers a passkey from the page through the client: its options, navigator.credentials.create, its answer. */
const registerInPage = (access: string, currentPassword: string): Promise<{ options: Answer; registered?: Answer }> =>
  page.evaluate(({ access, currentPassword }) => (globalThis as any).registerPasskey(access, currentPassword), { access, currentPassword })

/** Signs in from the page with the passkey through the client: no email, no password. */
const signInInPage = (): Promise<Answer> => page.evaluate(() => (globalThis as any).signInWithPasskey())

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())

describe('passkeys in Chromium with a virtual authenticator', () => {
  test(
    'register a passkey from a page, sign in with it without a password, then remove it',
    async () => {
      await freshAuthenticator()
      const user = await t.registerUser()

      const refused = await registerInPage(user.access, 'not-the-password')
      expect(refused.options.status).toBe(400)
      expect(refused.options.body).toEqual({ current_password: ['Your current password is incorrect.'] })

      const { options, registered } = await registerInPage(user.access, user.password)
      expect(options.body.rp).toEqual({ name: 'Acme', id: 'localhost' })
      expect(registered!.status).toBe(200)
      expect(registered!.body).toMatchObject({ type: 'passkey', name: 'This browser' })
      expect(registered!.body.recovery_codes).toHaveLength(10)

      const list = await t.call('GET', '/api/users/mfa/', { token: user.access })
      expect(list.body.factors).toEqual([expect.objectContaining({ id: registered!.body.id, type: 'passkey', name: 'This browser' })])

      // The password alone no longer signs in: the step-up names the passkey and the recovery codes.
      const password = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
      expect(password.status).toBe(403)
      expect(password.body).toMatchObject({ code: 'mfa_required', methods: ['recovery_code', 'passkey'] })

      const signedIn = await signInInPage()
      expect(signedIn.status).toBe(200)
      expect(claims(signedIn.body.access)).toMatchObject({ user_id: user.id, amr: ['webauthn'] })
      const me = await t.call('GET', '/api/users/me/', { token: signedIn.body.access })
      expect(me.body.email).toBe(user.email)
      const used = await t.call('GET', '/api/users/mfa/', { token: user.access })
      expect(used.body.factors[0].last_used_at).not.toBeNull()

      const removed = await t.call('DELETE', `/api/users/mfa/${registered!.body.id}/`, {
        token: user.access,
        body: { current_password: user.password },
      })
      expect(removed.status).toBe(204)
      expect((await t.call('GET', '/api/users/mfa/', { token: user.access })).body).toEqual({ factors: [], recovery_codes_left: 0 })
      // The authenticator still holds the credential; the service no longer knows it.
      const after = await signInInPage()
      expect(after.status).toBe(400)
      expect(after.body.code).toBe('passkey_invalid')
      expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
    },
    SLOW,
  )

  test(
    'a challenge works once: an answer replayed is refused',
    async () => {
      await freshAuthenticator()
      const user = await t.registerUser()
      expect((await registerInPage(user.access, user.password)).registered!.status).toBe(200)
      const answer = await page.evaluate(async () => {
        const response = await fetch('/api/users/passkeys/login/options/', { method: 'POST' })
        const credential = await (globalThis as any).startAuthentication({ optionsJSON: await response.json() })
        const send = () =>
          fetch('/api/users/passkeys/login/', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ credential }),
          }).then(async (r) => ({ status: r.status, body: await r.json() }))
        return [await send(), await send()]
      })
      expect(answer[0]!.status).toBe(200)
      expect(answer[1]).toEqual({ status: 400, body: expect.objectContaining({ code: 'passkey_invalid' }) })
    },
    SLOW,
  )
})
