import { afterAll, beforeAll, expect, test } from 'bun:test'
import type { BrowserContext } from 'playwright-core'
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

// What a frontend does on its redirect page: exchange the code (or show the error), never keep it in the URL.
const DONE_SCRIPT = `
const params = new URLSearchParams(location.search)
history.replaceState(null, '', location.pathname)
const show = (result) => { document.body.dataset.result = JSON.stringify(result) }
if (params.get('error')) show({ error: params.get('error') })
else fetch('${origin}/api/users/oauth/token/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: params.get('code') }) })
  .then(async (response) => show({ status: response.status, body: await response.json() }))
`

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
  frontend = Bun.serve({
    port: FRONTEND_PORT,
    hostname: '127.0.0.1',
    fetch: () => new Response(`<!doctype html><title>signed in</title><body><script>${DONE_SCRIPT}</script></body>`, { headers: { 'content-type': 'text/html' } }),
  })
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
  'a browser signs up through the provider: login and consent pages, back to the frontend with a code, exchanged for a session',
  async () => {
    provider.accounts.set('ada', { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace' })
    const page = await browser.newPage()
    await page.goto(`${origin}/api/users/oauth/test/authorize/?redirect_uri=${encodeURIComponent(DONE_PAGE)}`)
    expect(new URL(page.url()).origin).toBe(provider.issuer)
    await page.fill('input[name=login]', 'ada')
    await page.fill('input[name=password]', 'anything')
    await page.click('button[type=submit]')
    await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' })
    await page.click('button[type=submit]')
    // The page's own document (the test compiles without the DOM's types).
    const resultOf = () => (globalThis as any).document.body?.dataset.result as string | undefined
    await page.waitForFunction(resultOf, undefined, { timeout: SLOW })
    const result = JSON.parse((await page.evaluate(resultOf))!)
    expect(result.status).toBe(200)
    // The code left the address bar; no token ever was in it.
    expect(page.url()).toBe(DONE_PAGE)
    const me = await t.call('GET', '/api/users/me/', { token: result.body.access })
    expect(me.body).toMatchObject({ email: 'ada@example.com', full_name: 'Ada Lovelace', email_verified: true })
    await page.close()
  },
  SLOW,
)
