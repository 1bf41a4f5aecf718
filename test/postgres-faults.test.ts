import { afterAll, beforeAll, expect, test } from 'bun:test'
import postgres from 'postgres'
import { ADMIN_DATABASE_URL, createTestDatabase, TEST_SECRET } from './support/app'
import { BROKER_URL, eventsEnv, openTestBroker, waitFor, type TestBroker } from './support/broker'
import { freePort, spawnMain, waitForPort } from './support/process'

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

test('repeatedly terminating the backends of its database under load neither kills the process nor stops it serving', async () => {
  const database = await createTestDatabase('pg_terminate')
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
  const port = freePort()
  const exchange = broker.name('exchange')
  broker.track('exchange', exchange)
  const child = spawnMain(['serve'], {
    DATABASE_URL: database.url,
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
    await admin.end()
    await database.drop()
  })
  await waitForPort(port)
  const base = `http://127.0.0.1:${port}/api/users`
  const registered = await fetch(`${base}/register/`, json('POST', { email: 'cut@example.com', password: 'a-long-unusual-passphrase', full_name: 'Cut 0' }))
  const { access } = (await registered.json()) as { access: string }

  // Renames keep the pool and the relay's own connection busy (each one wakes the relay) while the
  // backends are cut; errors are expected then, a dead process is not.
  let loading = true
  let renames = 0
  const load = Promise.all(
    Array.from({ length: 4 }, async () => {
      while (loading) {
        await fetch(`${base}/update/`, json('PATCH', { full_name: `Cut ${++renames}` }, access)).catch(() => undefined)
      }
    }),
  )
  const name = new URL(database.url).pathname.slice(1)
  for (let round = 0; round < 10; round++) {
    await Bun.sleep(300)
    // Only this test's database: the machine's Postgres serves others too.
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`
    expect(child.exitCode).toBeNull()
  }
  loading = false
  await load
  await Bun.sleep(500)
  expect(child.exitCode).toBeNull()

  // Still serving, and still relaying: a rename after the cuts answers 200 and its event arrives.
  await waitFor(async () => (await fetch(`${base}/update/`, json('PATCH', { full_name: 'After cuts' }, access))).status === 200, 'a 200 after the cuts', 10_000)
  await waitFor(() => broker.deliveries.some((d) => d.queue === queue && d.body.full_name === 'After cuts'), 'the event after the cuts', 10_000)
  expect(child.exitCode).toBeNull()
  child.kill('SIGTERM')
  expect(await child.exited).toBe(0)
  expect(await stderr).not.toContain('socket.write')
}, 60_000)
