import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { capturingLogger, createTestApp, TEST_SECRET, type TestApp } from './support/app'
import { waitFor } from './support/wait'

const { logger, lines } = capturingLogger('debug')
/** The access-log lines of the requests sent with this X-Request-Id (written just after the response has gone). */
const accessLines = (id: string) => lines.filter((line) => line.msg === 'request' && line.req_id === id)
let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ label: 'observability', logger, env: { TRUSTED_PROXY_HOPS: '1' } })
})
afterAll(() => t.close())

describe('request ids', () => {
  test('a valid X-Request-Id is kept and returned, and one is made when absent or unsafe', async () => {
    const given = await t.call('GET', '/health/live', { headers: { 'x-request-id': 'trace-123.abc' } })
    expect(given.headers.get('x-request-id')).toBe('trace-123.abc')
    const made = await t.call('GET', '/health/live')
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    const unsafe = await t.call('GET', '/health/live', { headers: { 'x-request-id': 'evil "value" {}' + 'x'.repeat(200) } })
    expect(unsafe.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('access log', () => {
  test('one line per request with method, route template, status, duration and request id', async () => {
    const user = await t.registerUser()
    await t.call('GET', `/api/users/${user.id}/`, { token: user.access, headers: { 'x-request-id': 'log-line-1' } })
    await waitFor(() => accessLines('log-line-1').length > 0, 'the access line')
    const entries = accessLines('log-line-1')
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ req_id: 'log-line-1', method: 'GET', route: '/api/users/:id', status: 200 })
    expect(entries[0]!.duration_ms).toBeNumber()
  })

  test('an error response is logged with its real status', async () => {
    await t.call('GET', '/api/users/me/', { headers: { 'x-request-id': 'error-1' } })
    await t.call('GET', '/no/such/route', { headers: { 'x-request-id': 'error-2' } })
    await waitFor(() => accessLines('error-2').length > 0, 'the access lines')
    const statuses = [...accessLines('error-1'), ...accessLines('error-2')].map((line) => [line.route, line.status])
    expect(statuses).toEqual([
      ['/api/users/me', 401],
      ['unmatched', 404],
    ])
  })

  test('no password, token or secret reaches any log line', async () => {
    lines.length = 0
    const password = 'a-very-secret-passphrase-42'
    const user = await t.registerUser({ password })
    const login = await t.call('POST', '/api/users/login/', { body: { email: user.email, password } })
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'wrong-but-secret-guess' } })
    const refreshed = await t.call('POST', '/api/users/refresh/', { body: { refresh: login.body.refresh } })
    t.clock.advance(11_000)
    await t.call('POST', '/api/users/refresh/', { body: { refresh: login.body.refresh } })
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { password: 'another-secret-passphrase', current_password: password } })
    await t.call('POST', '/api/users/logout/', { token: user.access, body: { refresh: refreshed.body.refresh }, headers: { 'x-request-id': 'secrets-last' } })
    await waitFor(() => accessLines('secrets-last').length > 0, 'the last access line')
    const logged = JSON.stringify(lines)
    expect(lines.length).toBeGreaterThan(5)
    for (const secret of [password, 'wrong-but-secret-guess', 'another-secret-passphrase', TEST_SECRET, user.access, user.refresh, login.body.access, login.body.refresh, refreshed.body.refresh])
      expect(logged).not.toContain(secret)
  })
})

describe('metrics', () => {
  test('GET /metrics exports requests, logins, limits, revocations, the outbox and the process in Prometheus text', async () => {
    const user = await t.registerUser()
    await t.call('GET', '/api/users/me/', { token: user.access })
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'wrong-password' } })
    await t.call('POST', '/api/users/logout-all/', { token: user.access })
    for (let i = 0; i < 101; i++)
      await t.call('POST', '/api/users/login/', { body: { email: `nobody${i}@example.com`, password: 'wrong-password' }, headers: { 'x-forwarded-for': '198.51.100.9' } })

    const response = await t.app.handle(new Request('http://localhost/metrics'))
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toStartWith('text/plain')
    const text = await response.text()
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/api\/users\/me",status="200"\} [1-9]/)
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/users\/me",status="200"\} \d/)
    expect(text).toMatch(/users_logins_total\{result="success"\} [1-9]/)
    expect(text).toMatch(/users_logins_total\{result="failure"\} [1-9]/)
    expect(text).toContain('users_rate_limited_total{limit="login_address"} 1')
    expect(text).toMatch(/users_sessions_ended_total\{reason="logout_all"\} [1-9]/)
    expect(text).toMatch(/users_outbox_pending [1-9]/)
    expect(text).toMatch(/users_outbox_oldest_pending_seconds \d/)
    expect(text).toContain('# TYPE users_relay_publish_failures_total counter')
    expect(text).toContain('process_cpu_seconds_total')
  })
})

describe('security headers', () => {
  test('every API response, errors included, carries headers suited to a JSON API', async () => {
    for (const path of ['/api/users/me/', '/health/live', '/nothing']) {
      const response = await t.call('GET', path)
      expect(response.headers.get('x-content-type-options')).toBe('nosniff')
      expect(response.headers.get('x-frame-options')).toBe('DENY')
      expect(response.headers.get('referrer-policy')).toBe('no-referrer')
      expect(response.headers.get('cache-control')).toBe('no-store')
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'")
      expect(response.headers.get('strict-transport-security')).toStartWith('max-age=')
    }
  })

  test('the docs page may load its own scripts and styles, and nothing from elsewhere', async () => {
    const response = await t.app.handle(new Request('http://localhost/api/users/swagger'))
    expect(response.status).toBe(200)
    const policy = response.headers.get('content-security-policy')!
    expect(policy).toStartWith("default-src 'none'")
    expect(policy).toContain("script-src 'self';")
    expect(policy).toContain("frame-ancestors 'none'")
    expect(policy).not.toContain('unsafe')
    expect(policy).not.toContain('http')
  })
})
