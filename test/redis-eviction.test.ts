import { afterAll, expect, test } from 'bun:test'
import { createTestApp, type TestApp } from './support/app'
import { freePort } from './support/process'

// Throwaway redis-servers of this test's own, each configured as an operator might have: the machine's
// shared Redis is never reconfigured.
const servers: ReturnType<typeof Bun.spawn>[] = []
const apps: TestApp[] = []
afterAll(async () => {
  for (const app of apps) await app.close()
  for (const server of servers) server.kill('SIGKILL')
}, 20_000)

async function redisWith(...args: string[]) {
  const port = freePort()
  servers.push(Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdout: 'ignore', stderr: 'ignore' }))
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const up = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then((socket) => (socket.end(), true), () => false)
    if (up) return `redis://127.0.0.1:${port}`
    await Bun.sleep(50)
  }
  throw new Error('the throwaway redis-server did not start')
}

async function readiness(redisUrl: string) {
  const app = await createTestApp({ label: 'eviction', redisUrl })
  apps.push(app)
  return (await app.call('GET', '/health/ready')).body.checks.redis
}

test('readiness warns when Redis would evict session keys', async () => {
  const redis = await readiness(await redisWith('--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'))
  expect(redis).toMatchObject({ status: 'up', maxmemory_policy: 'allkeys-lru', warning: expect.stringContaining('noeviction') })
}, 20_000)

test('readiness has no warning when Redis is noeviction', async () => {
  const redis = await readiness(await redisWith('--maxmemory-policy', 'noeviction'))
  expect(redis).toEqual({ status: 'up', maxmemory_policy: 'noeviction' })
}, 20_000)

test('a Redis that refuses CONFIG (as managed ones do) is still up, with a warning to check the policy by hand', async () => {
  const redis = await readiness(await redisWith('--rename-command', 'CONFIG', '""'))
  expect(redis).toMatchObject({ status: 'up', maxmemory_policy: 'unknown', warning: expect.stringContaining('CONFIG') })
}, 20_000)
