import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import { createTestApp, type TestApp } from '../support/app'

// Debian's chromium, never a browser a tool downloads; no network a test machine may lack.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
// A browser starts slowly on a busy machine; generous, as the bound is only there to end a hung run.
const SLOW = 60_000

let t: TestApp
let server: ReturnType<TestApp['app']['listen']>
let origin: string
let profile: string
let browser: BrowserContext

beforeAll(async () => {
  t = await createTestApp({ driver: 'pglite', store: 'memory', label: 'docs' })
  server = t.app.listen({ port: 0, hostname: '127.0.0.1' })
  origin = `http://127.0.0.1:${server.server!.port}`
  profile = mkdtempSync(join(tmpdir(), 'users-chromium-'))
  browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS })
}, SLOW)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  await t?.close()
  if (profile) rmSync(profile, { recursive: true, force: true })
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
