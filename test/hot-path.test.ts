import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createTestApp, type TestApp } from './support/app'
import { waitFor } from './support/wait'

// GET /me and /users/{id} as every other service calls them, with no CORS origin configured (the default).
let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ label: 'hot_path' })
})
afterAll(() => t.close())

test('without CORS origins no Access-Control header is sent, and a preflight is a 404 in the error shape', async () => {
  const user = await t.registerUser()
  const me = await t.call('GET', '/api/users/me/', { token: user.access, headers: { origin: 'https://elsewhere.example', 'x-custom': '1' } })
  expect(me.status).toBe(200)
  expect([...me.headers.keys()].filter((name) => name.startsWith('access-control-'))).toEqual([])
  const preflight = await t.call('OPTIONS', '/api/users/me/', {
    headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  })
  expect(preflight.status).toBe(404)
  expect(preflight.body).toEqual({ detail: 'Not found.', code: 'not_found' })
  expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
})

test('bodies built once per cached row still follow every change of the user, with the email only for its owner', async () => {
  const ann = await t.registerUser({ full_name: 'Ann' })
  const bob = await t.registerUser({ full_name: 'Bob' })
  const first = await t.call('GET', '/api/users/me/', { token: ann.access })
  expect(first.body).toEqual({ id: ann.id, email: ann.email, email_verified: false, full_name: 'Ann', profile_pic: null })
  expect((await t.call('GET', '/api/users/me/', { token: ann.access })).body).toEqual(first.body)
  // The same cached row answers another caller without the email.
  expect((await t.call('GET', `/api/users/${ann.id}/`, { token: bob.access })).body).toEqual({ id: ann.id, full_name: 'Ann', profile_pic: null })
  expect((await t.call('PATCH', '/api/users/update/', { token: ann.access, body: { full_name: 'Ann Two' } })).status).toBe(200)
  expect((await t.call('GET', '/api/users/me/', { token: ann.access })).body).toEqual({ ...first.body, full_name: 'Ann Two' })
  expect((await t.call('GET', `/api/users/${ann.id}/`, { token: bob.access })).body).toEqual({ id: ann.id, full_name: 'Ann Two', profile_pic: null })
})

test('http_requests_total is the duration histogram count, label set for label set', async () => {
  const user = await t.registerUser()
  for (let i = 0; i < 5; i++) await t.call('GET', '/api/users/me/', { token: user.access })
  await t.call('GET', '/api/users/me/')
  const series = (text: string, name: string) =>
    Object.fromEntries([...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\}) (\\d+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]))
  const scrape = async () => {
    const text = await (await t.app.handle(new Request('http://localhost/metrics'))).text()
    return { totals: series(text, 'http_requests_total'), counts: series(text, 'http_request_duration_seconds_count') }
  }
  // A request is counted once its response has gone, just after the client has it.
  let scraped = await scrape()
  await waitFor(async () => (scraped = await scrape()).totals['{method="GET",route="/api/users/me",status="401"}'], 'the last request to be counted', 5_000, 20)
  expect(scraped.totals).toEqual(scraped.counts)
  expect(scraped.totals['{method="GET",route="/api/users/me",status="200"}']).toBeGreaterThanOrEqual(5)
  expect(scraped.totals['{method="GET",route="/api/users/me",status="401"}']).toBe(1)
})
