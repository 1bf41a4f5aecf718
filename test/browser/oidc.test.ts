import { afterAll, beforeAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import type { BrowserContext } from 'playwright-core'
import { createUsersClient } from '../../src/client'
import { createTestApp, type TestApp } from '../support/app'
import { launchChromium, SLOW } from '../support/chromium'
import { startTestProvider, TEST_CLIENT, type TestProvider } from '../support/oidc-provider'

// Ports of this file's range: the service, the provider, and the frontend.
const SERVICE_PORT = 7401
const PROVIDER_PORT = 7402
const FRONTEND_PORT = 7403
const origin = `http://127.0.0.1:${SERVICE_PORT}`
const frontendOrigin = `http://127.0.0.1:${FRONTEND_PORT}`
// The frontend's page the sign-in comes back to, on an origin of its own (the service allows it by CORS).
const DONE_PAGE = `${frontendOrigin}/oauth/done`

let t: TestApp
let server: ReturnType<TestApp['app']['listen']>
let provider: TestProvider
let browser: BrowserContext
let closeBrowser: (() => Promise<void>) | undefined
let frontend: ReturnType<typeof Bun.serve>

beforeAll(async () => {
  provider = await startTestProvider({ port: PROVIDER_PORT, redirectUris: [`${origin}/api/users/oauth/test/callback/`] })
  t = await createTestApp({
    driver: 'pglite',
    store: 'memory',
    label: 'oidc-browser',
    env: {
      PUBLIC_URL: origin,
      OIDC_PROVIDERS: JSON.stringify([{ name: 'test', issuer: provider.issuer, client_id: TEST_CLIENT.id, client_secret: TEST_CLIENT.secret }]),
      OAUTH_REDIRECT_URLS: DONE_PAGE,
      OIDC_ALLOW_HTTP: 'true',
      CORS_ALLOWED_ORIGINS: frontendOrigin,
    },
  })
  // The frontend's redirect page: the typed client, bundled, exchanging the code (or reading the error).
  const bundle = await Bun.build({ entrypoints: [join(import.meta.dir, 'oidc-done-page.ts')], target: 'browser', format: 'esm' })
  if (!bundle.success) throw new AggregateError(bundle.logs, 'could not bundle the redirect page')
  const html = `<!doctype html><title>signed in</title><script>serviceOrigin = ${JSON.stringify(origin)}</script><script type="module">${await bundle.outputs[0]!.text()}</script>`
  frontend = Bun.serve({ port: FRONTEND_PORT, hostname: '127.0.0.1', fetch: () => new Response(html, { headers: { 'content-type': 'text/html' } }) })
  server = t.app.listen({ port: SERVICE_PORT, hostname: '127.0.0.1' })
  ;({ browser, close: closeBrowser } = await launchChromium())
  // The provider's development pages load a web font; the test machine has no network to spend time on.
  await browser.route(/^https:\/\//, (route) => route.abort())
}, SLOW)

afterAll(async () => {
  await closeBrowser?.()
  await server?.stop()
  await frontend?.stop(true)
  await t?.close()
  await provider?.close()
})

test(
  'a browser signs up through the provider with the client: its authorize URL, login and consent, back to the frontend whose client exchanges the code',
  async () => {
    provider.accounts.set('ada', { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace' })
    const page = await browser.newPage()
    await page.goto(createUsersClient({ baseUrl: origin }).oidc.authorizeUrl('test', DONE_PAGE))
    expect(new URL(page.url()).origin).toBe(provider.issuer)
    await page.fill('input[name=login]', 'ada')
    await page.fill('input[name=password]', 'anything')
    await page.click('button[type=submit]')
    await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' })
    await page.click('button[type=submit]')
    // The redirect page's own global (the test compiles without the DOM's types).
    await page.waitForFunction(() => 'done' in globalThis, undefined, { timeout: SLOW })
    const result = await page.evaluate(() => (globalThis as any).done)
    expect(result.signIn).toEqual({ ok: true, data: { step: 'signed_in', user: expect.objectContaining({ email: 'ada@example.com' }) } })
    expect(result.snapshot).toMatchObject({ status: 'signed_in', user: { full_name: 'Ada Lovelace' } })
    expect(result.identities).toEqual({ ok: true, data: [expect.objectContaining({ provider: 'test', email: 'ada@example.com' })] })
    // The code left the address bar; no token ever was in it.
    expect(page.url()).toBe(DONE_PAGE)
    const me = await t.call('GET', '/api/users/me/', { token: result.tokens.access })
    expect(me.body).toMatchObject({ email: 'ada@example.com', full_name: 'Ada Lovelace', email_verified: true })
    // The same code again: spent.
    const again = await page.evaluate((code) => (globalThis as any).users.oidc.exchange(code), result.redirect.code)
    expect(again.ok || again.error).toMatchObject({ kind: 'http', status: 400, fields: { code: expect.any(Array) } })
    await page.close()
  },
  SLOW,
)
