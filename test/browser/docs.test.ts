import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { BrowserContext } from 'playwright-core'
import { createTestApp, type TestApp } from '../support/app'
import { launchChromium, SLOW } from '../support/chromium'

let t: TestApp
let server: ReturnType<TestApp['app']['listen']>
let origin: string
let browser: BrowserContext
let closeBrowser: (() => Promise<void>) | undefined

beforeAll(async () => {
  t = await createTestApp({ driver: 'pglite', store: 'memory', label: 'docs' })
  server = t.app.listen({ port: 0, hostname: '127.0.0.1' })
  origin = `http://127.0.0.1:${server.server!.port}`
  ;({ browser, close: closeBrowser } = await launchChromium())
}, SLOW)

afterAll(async () => {
  await closeBrowser?.()
  await server?.stop()
  await t?.close()
})

describe('the API docs page in Chromium, offline', () => {
  test(
    'shows every route from the service alone, with a lock on exactly the routes that need a token',
    async () => {
      const elsewhere: string[] = []
      const problems: string[] = []
      // Anything outside the service's origin is refused, as it would be on a machine without a network.
      await browser.route('**/*', (route) => {
        if (new URL(route.request().url()).origin === origin) return route.continue()
        elsewhere.push(route.request().url())
        return route.abort()
      })
      const page = await browser.newPage()
      page.on('console', (message) => void (message.type() === 'error' && problems.push(message.text())))
      page.on('pageerror', (error) => void problems.push(error.message))

      await page.goto(`${origin}/api/users/swagger`)

      const operation = (method: string, path: string) =>
        page.locator(`.opblock-${method}`).filter({ has: page.locator('.opblock-summary-path', { hasText: new RegExp(`^${path}$`) }) })
      await operation('post', '/api/users/login').waitFor({ state: 'visible', timeout: SLOW / 2 })
      for (const [method, path] of [['post', '/api/users/register'], ['post', '/api/users/refresh'], ['get', '/api/users/me'], ['get', '/health/ready']] as const)
        expect(await operation(method, path).isVisible()).toBe(true)
      // Swagger UI draws a lock on an operation only when the spec says it needs the JWT scheme.
      expect(await operation('post', '/api/users/login').locator('.authorization__btn').count()).toBe(0)
      expect(await operation('get', '/health/live').locator('.authorization__btn').count()).toBe(0)
      expect(await operation('get', '/api/users/me').locator('.authorization__btn').count()).toBe(1)
      expect(await page.getByText('Failed to load API definition').count()).toBe(0)

      expect(elsewhere).toEqual([])
      expect(problems).toEqual([])
    },
    SLOW,
  )
})
