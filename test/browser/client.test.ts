import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import sharp from 'sharp'
import type { Result, UsersClient } from '../../src/client'
import { StoreUnavailableError } from '../../src/sessions/store'
import { createTestApp, type TestApp } from '../support/app'
import { launchChromium, SLOW } from '../support/chromium'
import { waitFor } from '../support/wait'

// Ports of this test's own (7500-7549): the service, the page's origin, an origin CORS does not allow, a port
// whose server was stopped, and a server that never answers.
const API_PORT = 7500
const PAGE_PORT = 7501
const FOREIGN_PORT = 7502
const STOPPED_PORT = 7503
const SILENT_PORT = 7504
const api = `http://127.0.0.1:${API_PORT}`
const pageOrigin = `http://127.0.0.1:${PAGE_PORT}`
const MINUTE = 60_000

let t: TestApp
let browser: BrowserContext
let closeBrowser: (() => Promise<void>) | undefined
const servers: { stop(force?: boolean): unknown }[] = []
/** The service's refreshes, counted where they arrive. */
let refreshes = 0
/** How long the service takes to answer a refresh: a network's latency, so that tabs meet in flight. */
let refreshLatencyMs = 0

declare const users: UsersClient
declare const events: { event: string; status: string; name: string | null }[]
declare const setClockOffset: (ms: number) => void
declare const pictureFile: () => File

beforeAll(async () => {
  t = await createTestApp({ driver: 'pglite', store: 'memory', label: 'client_browser', env: { CORS_ALLOWED_ORIGINS: pageOrigin } })
  servers.push(
    Bun.serve({
      port: API_PORT,
      hostname: '127.0.0.1',
      async fetch(request) {
        if (request.method === 'POST' && new URL(request.url).pathname.startsWith('/api/users/refresh')) {
          refreshes++
          if (refreshLatencyMs) await Bun.sleep(refreshLatencyMs)
        }
        return t.app.handle(request)
      },
    }),
  )
  const bundle = await Bun.build({ entrypoints: [join(import.meta.dir, 'client-page.ts')], target: 'browser', format: 'esm' })
  if (!bundle.success) throw new AggregateError(bundle.logs, 'could not bundle the test page')
  const script = await bundle.outputs[0]!.text()
  const html = `<!doctype html><title>client</title><input type="file" id="picture"><script type="module">${script}</script>`
  for (const port of [PAGE_PORT, FOREIGN_PORT])
    servers.push(Bun.serve({ port, hostname: '127.0.0.1', fetch: () => new Response(html, { headers: { 'content-type': 'text/html' } }) }))
  // Accepts the request and never answers.
  servers.push(Bun.serve({ port: SILENT_PORT, hostname: '127.0.0.1', fetch: () => new Promise<Response>(() => {}) }))
  ;({ browser, close: closeBrowser } = await launchChromium())
}, SLOW)

afterAll(async () => {
  await closeBrowser?.()
  for (const server of servers) server.stop(true)
  await t?.close()
})

/** A tab of the app, its client ready. */
async function tab(origin = pageOrigin, base = api, query = '') {
  const page = await browser.newPage()
  await page.goto(`${origin}/?api=${encodeURIComponent(base)}${query}`)
  await page.waitForFunction(() => typeof users === 'object')
  await page.evaluate(() => users.ready)
  return page
}

const eventsOf = (page: Page) => page.evaluate(() => events.map((e) => e.event))
const lastEvent = (page: Page) => page.evaluate(() => events.at(-1) ?? null)
const newUser = () => ({ email: `browser-${crypto.randomUUID()}@example.com`, full_name: 'Browser User', password: 'a-long-unusual-passphrase' })
const outcome = (result: Result<unknown>) => (result.ok ? 'ok' : result.error.kind === 'http' ? result.error.status : result.error.kind)

/** Two tabs of one browser signed in to the same session: the second got it from the first over the channel. */
async function twoSignedInTabs() {
  const first = await tab()
  const body = newUser()
  expect(outcome(await first.evaluate((body) => users.register(body), body))).toBe('ok')
  const second = await tab()
  expect(await second.evaluate(() => users.auth.getSnapshot().status)).toBe('signed_in')
  return { first, second, body }
}

async function closeAll(...pages: Page[]) {
  // Signing out first keeps a later test's new tab from being handed this session.
  await pages[0]?.evaluate(() => users.logout())
  for (const page of pages) await page.close()
}

describe('the client in Chromium, from another origin', () => {
  test(
    'register, me, rename and a picture from a file input, each told to the auth state',
    async () => {
      const page = await tab()
      expect(await eventsOf(page)).toEqual(['initial_session'])
      const body = newUser()
      const registered = await page.evaluate((body) => users.register(body), body)
      expect(registered).toEqual({ ok: true, data: { step: 'signed_in', user: expect.objectContaining({ email: body.email, full_name: 'Browser User' }) } })
      const me = await page.evaluate(() => users.me())
      expect(me.ok && me.data.email).toBe(body.email)

      const renamed = await page.evaluate(() => users.updateProfile({ full_name: 'Renamed In Chromium' }))
      expect(renamed.ok && renamed.data.full_name).toBe('Renamed In Chromium')
      expect(await lastEvent(page)).toEqual({ event: 'user_updated', status: 'signed_in', name: 'Renamed In Chromium' })

      const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#c33' } }).png().toBuffer()
      await page.setInputFiles('#picture', { name: 'me.png', mimeType: 'image/png', buffer: png })
      const uploaded = await page.evaluate(() => users.uploadPicture(pictureFile()))
      expect(uploaded.ok && uploaded.data.profile_pic).toEndWith('.webp')
      expect(await page.evaluate(() => users.user?.profile_pic)).toBe(uploaded.ok ? uploaded.data.profile_pic : 'none')
      expect(await eventsOf(page)).toEqual(['initial_session', 'signed_in', 'user_updated', 'user_updated'])
      await closeAll(page)
    },
    SLOW,
  )

  test(
    'an access token near its expiry is refreshed before the request, an expired one after the 401',
    async () => {
      const page = await tab()
      await page.evaluate((body) => users.register(body), newUser())
      const before = refreshes
      // 14.5 minutes on: within the 30 s skew of the 15-minute access token.
      await page.evaluate(() => setClockOffset(14.5 * 60_000))
      expect(outcome(await page.evaluate(() => users.me()))).toBe('ok')
      expect(refreshes).toBe(before + 1)
      await page.evaluate(() => setClockOffset(0))
      // The service's clock passes the new token's expiry; the tab's does not, so the service's 401 says it.
      t.clock.advance(16 * MINUTE)
      expect(outcome(await page.evaluate(() => users.me()))).toBe('ok')
      expect(refreshes).toBe(before + 2)
      expect((await eventsOf(page)).filter((event) => event === 'token_refreshed')).toHaveLength(2)
      await closeAll(page)
    },
    SLOW,
  )

  test(
    'a reload keeps the session by default: the refresh token in sessionStorage, the access token nowhere, localStorage untouched',
    async () => {
      const page = await tab()
      await page.evaluate((body) => users.register(body), newUser())
      const { access, refresh } = (await page.evaluate(() => users.tokens))!
      const stored = () =>
        page.evaluate(() => {
          const all = (storage: Storage) => Object.fromEntries(Object.keys(storage).map((key) => [key, storage.getItem(key)]))
          return { session: all(sessionStorage), local: all(localStorage) }
        })
      expect((await stored()).session).toEqual({ 'users-service.refresh': refresh })
      expect(JSON.stringify(await stored())).not.toContain(access)
      const before = refreshes
      await page.reload()
      await page.waitForFunction(() => typeof users === 'object')
      expect(await page.evaluate(() => users.ready.then((snapshot) => [snapshot.status, snapshot.user?.full_name]))).toEqual(['signed_in', 'Browser User'])
      // One refresh for an access token, which lived in memory only.
      expect(refreshes).toBe(before + 1)
      expect((await stored()).local).toEqual({})
      await closeAll(page)
    },
    SLOW,
  )

  test(
    'auth events reach every tab: a login in one signs the other in, a rename updates both, a logout signs both out',
    async () => {
      const [first, second] = [await tab(), await tab()]
      const body = newUser()
      await first.evaluate((body) => users.register(body), body)
      await waitFor(async () => (await lastEvent(second))?.event === 'signed_in', 'the other tab signed in')
      expect(await lastEvent(second)).toEqual({ event: 'signed_in', status: 'signed_in', name: 'Browser User' })
      expect(outcome(await second.evaluate(() => users.me()))).toBe('ok')

      await first.evaluate(() => users.updateProfile({ full_name: 'Renamed Once' }))
      await waitFor(async () => (await lastEvent(second))?.name === 'Renamed Once', 'the rename in the other tab')
      expect(await lastEvent(second)).toEqual({ event: 'user_updated', status: 'signed_in', name: 'Renamed Once' })

      // A tab opened now is handed the session by an open one, with no request of its own.
      const third = await tab()
      expect(await third.evaluate(() => [users.auth.getSnapshot().status, users.user?.full_name])).toEqual(['signed_in', 'Renamed Once'])

      await first.evaluate(() => users.logout())
      expect(await lastEvent(first)).toEqual({ event: 'signed_out', status: 'signed_out', name: null })
      for (const other of [second, third]) {
        await waitFor(async () => (await lastEvent(other))?.event === 'signed_out', 'the other tabs signed out')
        expect(await other.evaluate(() => users.tokens)).toBeNull()
      }
      for (const page of [first, second, third]) await page.close()
    },
    SLOW,
  )

  test(
    'two tabs refreshing at the same instant send one refresh between them, round after round',
    async () => {
      const { first, second } = await twoSignedInTabs()
      // Timers fire late on a busy machine: with 200 ms of latency the tabs' refreshes still overlap.
      refreshLatencyMs = 200
      const counts: number[] = []
      try {
        for (let round = 0; round < 5; round++) {
          const before = refreshes
          const at = Date.now() + 300
          const both = [first, second].map((page) =>
            page.evaluate(
              (at) =>
                new Promise<{ from: string | undefined; result: Result<void> }>((resolve) =>
                  setTimeout(() => {
                    const from = users.tokens?.refresh
                    void users.refresh().then((result) => resolve({ from, result }))
                  }, at - Date.now()),
                ),
              at,
            ),
          )
          const [a, b] = await Promise.all(both)
          // Both started from the same pair, so this round was a race: one of them must not refresh.
          expect(a!.from).toBe(b!.from!)
          expect([outcome(a!.result), outcome(b!.result)]).toEqual(['ok', 'ok'])
          counts.push(refreshes - before)
          expect(await second.evaluate(() => users.tokens?.refresh)).toBe(await first.evaluate(() => users.tokens?.refresh))
        }
      } finally {
        refreshLatencyMs = 0
      }
      expect(counts).toEqual([1, 1, 1, 1, 1])
      // The tabs still hold a live session.
      expect([outcome(await first.evaluate(() => users.me())), outcome(await second.evaluate(() => users.me()))]).toEqual(['ok', 'ok'])
      await closeAll(first, second)
    },
    SLOW,
  )

  test(
    'a refused refresh signs every tab out',
    async () => {
      const { first, second, body } = await twoSignedInTabs()
      // Every session ended from elsewhere: the next refresh is refused.
      const login = await t.call('POST', '/api/users/login/', { body: { email: body.email, password: body.password } })
      await t.call('POST', '/api/users/logout-all/', { token: login.body.access })
      expect(outcome(await first.evaluate(() => users.me()))).toBe(401)
      for (const page of [first, second]) {
        await waitFor(async () => (await lastEvent(page))?.event === 'signed_out', 'signed out')
        expect(await page.evaluate(() => users.tokens)).toBeNull()
      }
      await closeAll(first, second)
    },
    SLOW,
  )
})

describe('failures the app can tell apart', () => {
  test(
    'a page on an origin the service does not allow gets kind cors',
    async () => {
      const page = await tab(`http://127.0.0.1:${FOREIGN_PORT}`)
      const me = await page.evaluate(() => users.me())
      expect(me.ok || me.error.kind).toBe('cors')
      await page.close()
    },
    SLOW,
  )

  test(
    'a stopped server gets kind network',
    async () => {
      const stopped = Bun.serve({ port: STOPPED_PORT, hostname: '127.0.0.1', fetch: () => new Response('') })
      await stopped.stop(true)
      const page = await tab(pageOrigin, `http://127.0.0.1:${STOPPED_PORT}`)
      const login = await page.evaluate(() => users.login({ email: 'ann@example.com', password: 'a-long-passphrase' }))
      expect(login.ok || login.error.kind).toBe('network')
      await page.close()
    },
    SLOW,
  )

  test(
    'no answer within timeoutMs gets kind timeout',
    async () => {
      const page = await tab(pageOrigin, `http://127.0.0.1:${SILENT_PORT}`, '&timeout=300')
      const started = performance.now()
      const login = await page.evaluate(() => users.login({ email: 'ann@example.com', password: 'a-long-passphrase' }))
      expect(login.ok || login.error.kind).toBe('timeout')
      expect(performance.now() - started).toBeLessThan(5_000)
      await page.close()
    },
    SLOW,
  )

  test(
    "the service's own 503 is kind http, status 503, code service_unavailable",
    async () => {
      const page = await tab()
      await page.evaluate((body) => users.register(body), newUser())
      const sessions = t.deps.sessions
      const isActive = sessions.isActive
      sessions.isActive = () => Promise.reject(new StoreUnavailableError(new Error('down for the test')))
      try {
        const me = await page.evaluate(() => users.me())
        expect(me.ok || me.error).toEqual({
          kind: 'http',
          status: 503,
          code: 'service_unavailable',
          detail: expect.any(String),
          retryAfter: 1,
          body: expect.objectContaining({ code: 'service_unavailable' }),
        })
      } finally {
        sessions.isActive = isActive
      }
      // Not a sign-out: the tab keeps its session for when the service is back.
      expect(await page.evaluate(() => users.auth.getSnapshot().status)).toBe('signed_in')
      await closeAll(page)
    },
    SLOW,
  )
})
