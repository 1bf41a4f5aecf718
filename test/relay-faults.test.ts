import { afterAll, afterEach, beforeAll, expect, test } from 'bun:test'
import { and, asc, eq, isNull } from 'drizzle-orm'
import type { Config } from '../src/config'
import { createPublisher } from '../src/deps'
import { PublishError, type Publisher } from '../src/events/publisher'
import { outboxEvents } from '../src/events/table'
import type { Logger } from '../src/logger'
import { findUserById } from '../src/users/lookup'
import { updateUser } from '../src/users/service'
import { capturingLogger, createTestApp, type TestAppOptions } from './support/app'
import { BROKER_PORT, eventsEnv, openTestBroker, testPublisher, type TestBroker } from './support/broker'
import { waitFor } from './support/wait'
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy'

type TestApp = Awaited<ReturnType<typeof createTestApp>>

let broker: TestBroker
let queue: string
let env: Record<string, string>
const apps: TestApp[] = []
const proxies: TcpProxy[] = []

beforeAll(async () => {
  broker = await openTestBroker('faults')
  queue = broker.name('posts')
  env = eventsEnv({ queues: [queue], current: broker.name('users'), exchange: broker.name('exchange') })
  broker.track('exchange', env.EVENTS_EXCHANGE!)
  await broker.legacyConsumer(queue)
})
afterEach(async () => {
  for (const app of apps.splice(0).reverse()) await app.close()
  for (const proxy of proxies.splice(0)) await proxy.stop()
})
afterAll(() => broker.close())

async function eventsApp(options: Partial<TestAppOptions> & { url?: string } = {}) {
  const app = await createTestApp({
    label: 'faults',
    publisher: testPublisher(options.url),
    ...options,
    env: { ...env, ...options.env },
  })
  apps.push(app)
  return app
}

async function brokerProxy() {
  const proxy = await startTcpProxy({ targetPort: BROKER_PORT })
  proxies.push(proxy)
  return { proxy, url: `amqp://guest:guest@127.0.0.1:${proxy.port}` }
}

const received = (userId: string) => broker.deliveries.filter((d) => d.queue === queue && d.body.id === userId)
const fullNames = (userId: string) => received(userId).map((d) => d.body.full_name)
const messageIds = (userId: string) => received(userId).map((d) => d.properties.messageId as string)
const connected = (app: TestApp) => () => app.publisher!.isConnected()
const rename = (app: TestApp, user: { access: string }, fullName: string) =>
  app.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: fullName } })

// Receipt alone is not enough before breaking the link: the broker's confirm may still be on its way, and a
// lost confirm means the event is published again (at least once, by design).
async function confirmed(app: TestApp, userId: string) {
  const pending = await app.deps.db
    .select({ seq: outboxEvents.seq })
    .from(outboxEvents)
    .where(and(eq(outboxEvents.userId, userId), isNull(outboxEvents.publishedAt)))
  return pending.length === 0
}

async function outboxIds(app: TestApp, userId: string) {
  const rows = await app.deps.db.select().from(outboxEvents).where(eq(outboxEvents.userId, userId)).orderBy(asc(outboxEvents.seq))
  return rows.map((row) => row.id)
}

/** An app whose broker link the test controls, with one user whose created event the broker has confirmed. */
async function proxiedAppWithUser(fullName: string, options: Partial<TestAppOptions> = {}) {
  const { proxy, url } = await brokerProxy()
  const app = await eventsApp({ ...options, url })
  await waitFor(connected(app), 'the publisher to connect')
  const user = await app.registerUser({ full_name: fullName })
  await waitFor(() => confirmed(app, user.id), 'the created event to be confirmed')
  return { proxy, app, user }
}

/** Renames through HTTP and checks the answer came well inside the publisher's 2 s timeout. */
async function renameWithoutWaiting(app: TestApp, user: { access: string }, fullName: string) {
  const startedAt = performance.now()
  expect((await rename(app, user, fullName)).status).toBe(200)
  expect(performance.now() - startedAt).toBeLessThan(1_000)
}

// Changes a user without the HTTP layer, so no after-response hook wakes the relay.
async function renameQuietly(app: TestApp, userId: string, fullName: string) {
  await updateUser(app.deps, (await findUserById(app.deps.db, userId))!, { fullName })
}

test('during a broker outage requests stay fast and readiness says so; afterwards every event arrives exactly once, in order', async () => {
  const { proxy, app, user } = await proxiedAppWithUser('Outage 0')

  proxy.cut()
  await waitFor(() => !connected(app)(), 'the outage to be noticed')
  // Loose on purpose (the hung-broker test is the sharp one): it rules out waiting on reconnect attempts.
  for (let i = 1; i <= 5; i++) await renameWithoutWaiting(app, user, `Outage ${i}`)
  const ready = await app.call('GET', '/health/ready')
  expect(ready.status).toBe(503)
  expect(ready.body).toMatchObject({ code: 'not_ready', checks: { broker: { status: 'down' }, database: { status: 'up' } } })
  expect(ready.body.detail).toContain('broker')

  proxy.restore()
  await waitFor(() => received(user.id).length >= 6, 'the backlog', 10_000)
  // Room for a duplicate to show up, were there one.
  await Bun.sleep(200)
  expect(fullNames(user.id)).toEqual(['Outage 0', 'Outage 1', 'Outage 2', 'Outage 3', 'Outage 4', 'Outage 5'])
  expect(messageIds(user.id)).toEqual(await outboxIds(app, user.id))
}, 20_000)

test('with a hung broker, requests answer without waiting for its confirms, and the events follow once it answers', async () => {
  const { proxy, app, user } = await proxiedAppWithUser('Hung 0')

  proxy.stall()
  // The relay's next publish now waits for a confirm the stall holds back (up to the publisher's 2 s
  // timeout); a request that waited for it would take about that long.
  for (let i = 1; i <= 3; i++) await renameWithoutWaiting(app, user, `Hung ${i}`)

  proxy.restore()
  await waitFor(() => fullNames(user.id).includes('Hung 3'), 'the held events', 10_000)
  // Were the stall to outlast the timeout, the relay would publish the held event again: at least once,
  // so a repeat may follow, but never an event older than one already delivered.
  const order = await outboxIds(app, user.id)
  const positions = messageIds(user.id).map((id) => order.indexOf(id))
  expect([...new Set(positions)]).toEqual(order.map((_, i) => i))
  expect(positions).toEqual(positions.toSorted((a, b) => a - b))
}, 20_000)

test('the service starts and serves with the broker unreachable, and delivers the backlog once it is reachable', async () => {
  const { proxy, url } = await brokerProxy()
  proxy.cut()
  const app = await eventsApp({ url })
  const user = await app.registerUser({ full_name: 'Early 1' })
  expect((await rename(app, user, 'Early 2')).status).toBe(200)
  expect((await app.call('GET', '/health/ready')).body.checks.broker.status).toBe('down')
  expect(await outboxIds(app, user.id)).toHaveLength(2)

  proxy.restore()
  await waitFor(() => received(user.id).length === 2, 'the backlog', 10_000)
  expect(fullNames(user.id)).toEqual(['Early 1', 'Early 2'])
}, 20_000)

test('two app instances on one database publish each event exactly once, and each user in order', async () => {
  const first = await eventsApp()
  const second = await eventsApp({ sameDeploymentAs: first })
  await waitFor(() => connected(first)() && connected(second)(), 'both publishers to connect')
  const instances = [first, second]
  const users = await Promise.all([0, 1, 2, 3].map((i) => instances[i % 2]!.registerUser({ full_name: `Shared ${i}.0` })))

  // Each user's updates alternate between the instances; the users run concurrently.
  await Promise.all(
    users.map(async (user, u) => {
      for (let i = 1; i <= 6; i++) expect((await rename(instances[(u + i) % 2]!, user, `Shared ${u}.${i}`)).status).toBe(200)
    }),
  )

  await waitFor(() => users.every((user) => received(user.id).length >= 7), 'every event', 10_000)
  await Bun.sleep(200)
  for (const [u, user] of users.entries()) {
    expect(messageIds(user.id)).toEqual(await outboxIds(first, user.id))
    expect(fullNames(user.id)).toEqual(Array.from({ length: 7 }, (_, i) => `Shared ${u}.${i}`))
  }
}, 20_000)

test('a poison event is given up after the maximum attempts and reported, while other users flow and its user waits behind it', async () => {
  const { logger, lines } = capturingLogger()
  const app = await eventsApp({ env: { OUTBOX_MAX_ATTEMPTS: '3' }, logger, publisher: refusing('Poison Pill') })
  await waitFor(connected(app), 'the publisher to connect')
  const victim = await app.registerUser({ full_name: 'Victim' })
  const bystander = await app.registerUser({ full_name: 'Bystander 1' })
  await rename(app, victim, 'Poison Pill')
  await rename(app, victim, 'After Poison')
  await rename(app, bystander, 'Bystander 2')

  await waitFor(() => fullNames(bystander.id).includes('Bystander 2'), 'the later event of another user', 10_000)
  const [poison] = await app.deps.db
    .select()
    .from(outboxEvents)
    .where(and(eq(outboxEvents.userId, victim.id), eq(outboxEvents.name, 'user.updated')))
    .orderBy(asc(outboxEvents.seq))
  expect(poison).toMatchObject({ attempts: 3, publishedAt: null, lastError: expect.stringContaining('nacked') })
  expect(poison!.failedAt).toBeInstanceOf(Date)
  expect(fullNames(victim.id)).toEqual(['Victim'])
  expect(lines.some((line) => line.level === 50 && line.msg.includes('gave up') && line.eventId === poison!.id)).toBe(true)

  const ready = await app.call('GET', '/health/ready')
  expect(ready.status).toBe(503)
  expect(ready.body.checks.outbox).toMatchObject({ status: 'down', failed: 1 })
}, 20_000)

test('stopping flushes the pending events before the deadline', async () => {
  const app = await eventsApp({ env: { OUTBOX_SWEEP_INTERVAL: '1h' } })
  await waitFor(connected(app), 'the publisher to connect')
  const user = await app.registerUser({ full_name: 'Flush 1' })
  await waitFor(() => received(user.id).length === 1, 'the created event')
  await renameQuietly(app, user.id, 'Flush 2')

  await app.deps.relay.stop({ deadlineMs: 2_000 })
  await waitFor(() => received(user.id).length === 2, 'the flushed event')
  expect(fullNames(user.id)).toEqual(['Flush 1', 'Flush 2'])
})

test('stopping with a stalled broker returns by its deadline and leaves the events in the outbox', async () => {
  const { proxy, app, user } = await proxiedAppWithUser('Stalled 0', { env: { OUTBOX_SWEEP_INTERVAL: '1h' } })
  proxy.stall()
  await renameQuietly(app, user.id, 'Stalled')

  const startedAt = performance.now()
  await app.deps.relay.stop({ deadlineMs: 300 })
  // The deadline, plus the relay connection's one-second grace to end its open transaction.
  expect(performance.now() - startedAt).toBeLessThan(1_800)
  const pending = await app.deps.db
    .select()
    .from(outboxEvents)
    .where(and(eq(outboxEvents.userId, user.id), isNull(outboxEvents.publishedAt)))
  expect(pending.map((row) => row.name)).toEqual(['user.updated'])
  proxy.restore()
})

test('published events are pruned after the retention; unpublished ones never are', async () => {
  const app = await eventsApp({ env: { OUTBOX_RETENTION: '7d' } })
  await waitFor(connected(app), 'the publisher to connect')
  const user = await app.registerUser()
  await waitFor(() => confirmed(app, user.id), 'the created event to be confirmed')
  const keptForever = { id: crypto.randomUUID(), name: 'user.updated', userId: crypto.randomUUID(), payload: {}, createdAt: new Date(0), failedAt: new Date(0) }
  await app.deps.db.insert(outboxEvents).values(keptForever)

  app.clock.advance(7 * 86_400_000 + 60_000)
  app.deps.relay.wake()
  await waitFor(async () => (await outboxIds(app, user.id)).length === 0, 'the published event to be pruned')
  expect(await outboxIds(app, keptForever.userId)).toEqual([keptForever.id])
})

/** The app's real publisher, except that the broker "nacks" every event whose full_name is `poison`. */
function refusing(poison: string) {
  return (config: Config, logger: Logger): Publisher => {
    const real = testPublisher()(config, logger)
    return {
      ...real,
      async publish(events) {
        const index = events.findIndex((event) => (event.payload as { full_name?: string }).full_name === poison)
        if (index === -1) return real.publish(events)
        await real.publish(events.slice(0, index))
        throw new PublishError('nacked', events[index]!, index, 'broker nacked the message')
      },
    }
  }
}

test('with the production backoff, events flow again within about a second of the broker returning after a long outage', async () => {
  const { proxy, url } = await brokerProxy()
  const { app, user } = await (async () => {
    const app = await eventsApp({ url, publisher: (config, logger) => createPublisher(config, url, logger) })
    await waitFor(connected(app), 'the publisher to connect')
    return { app, user: await app.registerUser({ full_name: 'Back 0' }) }
  })()
  await waitFor(() => received(user.id).length === 1, 'the created event')

  proxy.cut()
  await waitFor(() => !connected(app)(), 'the outage to be noticed')
  expect((await rename(app, user, 'Back 1')).status).toBe(200)
  // Long enough for an uncapped backoff to reach several seconds.
  await Bun.sleep(8_000)

  proxy.restore()
  const restoredAt = performance.now()
  await waitFor(() => fullNames(user.id).includes('Back 1'), 'the event held during the outage', 10_000)
  const recoveryMs = performance.now() - restoredAt
  console.info(`broker back → first event after ${Math.round(recoveryMs)} ms`)
  expect(recoveryMs).toBeLessThan(2_500)
}, 30_000)
