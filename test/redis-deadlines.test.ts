import { afterAll, beforeAll, expect, test } from 'bun:test'
import { commandDeadlines, CommandTimeoutError } from '../src/redis/client'
import { createTestApp, type TestApp } from './support/app'
import { freePort } from './support/process'
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy'

test('a command within its deadline passes its value or its error through', async () => {
  const deadlines = commandDeadlines(1_000)
  expect(await deadlines.within(Promise.resolve(1))).toBe(1)
  await expect(deadlines.within(Promise.reject(new Error('refused')))).rejects.toThrow('refused')
  expect(deadlines.pending()).toBe(0)
})

test('commands that never answer fail once overdue, oldest first, with one timer for all; later answers change nothing', async () => {
  const deadlines = commandDeadlines(200)
  let answer = (_: string) => {}
  const hung = deadlines.within(new Promise<string>((resolve) => (answer = resolve)))
  const started = performance.now()
  const others = Array.from({ length: 50 }, () => deadlines.within(new Promise(() => {})).catch((error: unknown) => error))
  const fast = deadlines.within(Promise.resolve('fast'))
  expect(await fast).toBe('fast')
  const error = await hung.catch((e: unknown) => e)
  const waited = performance.now() - started
  expect(error).toBeInstanceOf(CommandTimeoutError)
  // Between the deadline and a quarter more, plus generous slack for a busy machine.
  expect(waited).toBeGreaterThanOrEqual(195)
  expect(waited).toBeLessThan(2_000)
  for (const other of await Promise.all(others)) expect(other).toBeInstanceOf(CommandTimeoutError)
  answer('late')
  expect(deadlines.pending()).toBe(0)
})

// A throwaway redis-server behind a proxy that can hold every byte back: a hung, not a closed, connection.
const port = freePort()
const redis = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' })
let proxy: TcpProxy
let t: TestApp
beforeAll(async () => {
  for (let i = 0; i < 100 && !(await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then((s) => (s.end(), true), () => false)); i++) await Bun.sleep(50)
  proxy = await startTcpProxy({ targetPort: port })
  t = await createTestApp({ label: 'redis_deadlines', store: 'redis', redisUrl: `redis://127.0.0.1:${proxy.port}` })
})
afterAll(async () => {
  proxy.restore()
  await t.close()
  await proxy.stop()
  redis.kill('SIGKILL')
})

test('with Redis hung, the session check of GET /me answers 503 within its deadline, and 200 once Redis answers again', async () => {
  const user = await t.registerUser()
  proxy.stall()
  const started = performance.now()
  const stalled = await Promise.all(Array.from({ length: 20 }, () => t.call('GET', '/api/users/me/', { token: user.access })))
  for (const response of stalled) {
    expect(response.status).toBe(503)
    expect(response.body.code).toBe('service_unavailable')
  }
  // The deadline is 1 s (at most 1.25 s): generous for a shared machine, far from a hang.
  expect(performance.now() - started).toBeLessThan(5_000)
  proxy.restore()
  let status = 0
  for (const deadline = Date.now() + 10_000; status !== 200 && Date.now() < deadline; await Bun.sleep(50))
    status = (await t.call('GET', '/api/users/me/', { token: user.access })).status
  expect(status).toBe(200)
})
