import { afterAll, beforeAll, expect, test } from 'bun:test'
import postgres from 'postgres'
import { ADMIN_DATABASE_URL, createTestDatabase, TEST_SECRET } from './support/app'
import { BROKER_URL, eventsEnv, openTestBroker, type TestBroker } from './support/broker'
import { waitFor } from './support/wait'
import { freePort, spawnMain, waitForPort } from './support/process'
import { startTcpProxy } from './support/tcp-proxy'

let broker: TestBroker
let queue: string
const cleanups: (() => Promise<unknown>)[] = []
beforeAll(async () => {
  broker = await openTestBroker('pg_faults')
  queue = broker.name('posts')
  await broker.legacyConsumer(queue)
})
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await broker.close()
})

const json = (method: string, body: unknown, token?: string) => ({
  method,
  headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
  body: JSON.stringify(body),
})

/** The service as a child process on a database of its own, its events going to this file's queue. */
async function startService(label: string, databaseUrl: (url: string) => string | Promise<string> = (url) => url) {
  const database = await createTestDatabase(label)
  const port = freePort()
  const exchange = broker.name('exchange')
  broker.track('exchange', exchange)
  const child = spawnMain(['serve'], {
    DATABASE_URL: await databaseUrl(database.url),
    SECRET_KEY: TEST_SECRET,
    PORT: String(port),
    AMQP_URL: BROKER_URL,
    ...eventsEnv({ queues: [queue], current: broker.name('users'), exchange }),
    OUTBOX_SWEEP_INTERVAL: '1s',
    ARGON2_MEMORY_KIB: '7168',
  })
  const stderr = new Response(child.stderr).text()
  cleanups.push(async () => {
    child.kill('SIGKILL')
    await child.exited
    await database.drop()
  })
  await waitForPort(port)
  const base = `http://127.0.0.1:${port}/api/users`
  const email = `${label}@example.com`
  const registered = await fetch(`${base}/register/`, json('POST', { email, password: 'a-long-unusual-passphrase', full_name: `${label} 0` }))
  const { access } = (await registered.json()) as { access: string }
  const rename = (fullName: string) => fetch(`${base}/update/`, json('PATCH', { full_name: fullName }, access))
  return { child, port, database, base, rename, stderr }
}

const delivered = (fullName: string) => () => broker.deliveries.some((d) => d.queue === queue && d.body.full_name === fullName)

test('repeatedly terminating the backends of its database under load neither kills the process nor stops it serving', async () => {
  const { child, database, rename, stderr } = await startService('pg_terminate')
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
  cleanups.push(() => admin.end())
  // Renames keep the pool and the relay's own connection busy (each one wakes the relay) while the
  // backends are cut; errors are expected then, a dead process is not.
  let loading = true
  let renames = 0
  const load = Promise.all(
    Array.from({ length: 4 }, async () => {
      while (loading) {
        await rename(`Cut ${++renames}`).catch(() => undefined)
      }
    }),
  )
  const name = new URL(database.url).pathname.slice(1)
  for (let round = 0; round < 10; round++) {
    await Bun.sleep(300)
    // Only this test's database: the machine's Postgres serves others too.
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`
    if (child.exitCode !== null) throw new Error(`the service died: ${await stderr}`)
  }
  loading = false
  await load
  await Bun.sleep(500)
  expect(child.exitCode).toBeNull()

  // Still serving, and still relaying: a rename after the cuts answers 200 and its event arrives.
  await waitFor(async () => (await rename('After cuts')).status === 200, 'a 200 after the cuts', 10_000)
  await waitFor(delivered('After cuts'), 'the event after the cuts', 10_000)
  expect(child.exitCode).toBeNull()
  child.kill('SIGTERM')
  expect(await child.exited).toBe(0)
  expect(await stderr).not.toContain('socket.write')
}, 60_000)

test('with Postgres unreachable requests answer 503 at once and readiness says so; within 2 s of its return they succeed and events flow', async () => {
  const proxies: Awaited<ReturnType<typeof startTcpProxy>>[] = []
  const service = await startService('pg_outage', async (url) => {
    const proxy = await startTcpProxy({ targetPort: Number(new URL(url).port || 5432) })
    proxies.push(proxy)
    const proxied = new URL(url)
    proxied.port = String(proxy.port)
    return proxied.toString()
  })
  const proxy = proxies[0]!
  cleanups.push(() => proxy.stop())
  expect((await service.rename('Before')).status).toBe(200)
  await waitFor(delivered('Before'), 'the event before the outage', 10_000)

  proxy.cut()
  // Long enough for any reconnect backoff to grow, as in a real outage.
  const outageEnds = performance.now() + 5_000
  let attempts = 0
  while (performance.now() < outageEnds) {
    const startedAt = performance.now()
    const response = await service.rename(`During ${++attempts}`)
    const tookMs = performance.now() - startedAt
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('1')
    expect(await response.json()).toEqual({ detail: expect.any(String), code: 'service_unavailable' })
    // The first request may spend the connect timeout finding out; after that the answer is immediate.
    expect(tookMs).toBeLessThan(attempts === 1 ? 3_000 : 500)
    await Bun.sleep(100)
  }
  const ready = await fetch(`http://127.0.0.1:${service.port}/health/ready`)
  expect(ready.status).toBe(503)
  expect(((await ready.json()) as { checks: { database: { status: string } } }).checks.database.status).toBe('down')

  proxy.restore()
  const restoredAt = performance.now()
  let firstOkMs = Infinity
  await waitFor(async () => {
    const ok = (await service.rename('After')).status === 200
    if (ok) firstOkMs = performance.now() - restoredAt
    return ok
  }, 'a 200 after the outage', 10_000)
  await waitFor(delivered('After'), 'the event after the outage', 10_000)
  const firstEventMs = performance.now() - restoredAt
  console.info(`database back → first 200 after ${Math.round(firstOkMs)} ms, first event after ${Math.round(firstEventMs)} ms`)
  expect(firstOkMs).toBeLessThan(2_000)
  expect(firstEventMs).toBeLessThan(3_000)
  expect(service.child.exitCode).toBeNull()
}, 60_000)
