import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createTestApp, type TestApp } from './support/app'
import { freePort } from './support/process'
import { waitFor } from './support/wait'

// A throwaway redis-server of this test's own: the machine's shared Redis is never stopped.
const port = freePort()
const startRedis = () =>
  Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' })

let redis = startRedis()
let t: TestApp
beforeAll(async () => {
  await waitFor(async () => (await fetchRedisPing()) === true, 'the throwaway Redis to answer', 10_000, 50)
  t = await createTestApp({ label: 'redis_faults', store: 'redis', redisUrl: `redis://127.0.0.1:${port}` })
})
afterAll(async () => {
  await t.close()
  redis.kill('SIGKILL')
})

async function fetchRedisPing() {
  try {
    const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } })
    socket.end()
    return true
  } catch {
    return false
  }
}

test('while Redis is down every session route answers 503 quickly, never 500, and the service recovers by itself', async () => {
  const user = await t.registerUser()
  redis.kill('SIGKILL')
  await redis.exited

  const started = performance.now()
  const calls = [
    t.call('GET', '/api/users/me/', { token: user.access }),
    t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } }),
    t.call('POST', '/api/users/logout/', { token: user.access, body: { refresh: user.refresh } }),
    t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } }),
    t.call('GET', '/api/users/sessions/', { token: user.access }),
  ]
  for (const response of await Promise.all(calls)) {
    expect(response.status).toBe(503)
    expect(response.body.code).toBe('service_unavailable')
    expect(response.headers.get('retry-after')).toBe('1')
  }
  expect(performance.now() - started).toBeLessThan(2_000)
  const ready = await t.call('GET', '/health/ready')
  expect(ready.status).toBe(503)
  expect(ready.body.checks.redis.status).toBe('down')

  const change = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { password: 'never-stored-passphrase', current_password: user.password } })
  expect(change.status).toBe(503)

  redis = startRedis()
  await waitFor(async () => (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status === 200, 'login to work again', 10_000, 50)
  // The throwaway server kept nothing, so old sessions are gone; a new login works end to end.
  const login = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
  expect((await t.call('GET', '/api/users/me/', { token: login.body.access })).status).toBe(200)
  expect((await t.call('GET', '/health/ready')).status).toBe(200)
  const oldPassword = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'never-stored-passphrase' } })
  expect(oldPassword.status).toBe(400)
}, 30_000)
