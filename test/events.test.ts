import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { createTestApp } from './support/app'
import { eventsEnv, openTestBroker, testPublisher, type TestBroker } from './support/broker'
import { waitFor } from './support/wait'

let broker: TestBroker
let t: Awaited<ReturnType<typeof createTestApp>>
let queues: string[]
let current: string
let exchange: string
let topicQueue: string

beforeAll(async () => {
  broker = await openTestBroker('events')
  queues = [broker.name('posts'), broker.name('friends')]
  current = broker.name('users')
  exchange = broker.name('exchange')
  for (const queue of [...queues, current]) await broker.legacyConsumer(queue)
  topicQueue = await broker.topicConsumer(exchange)
  t = await createTestApp({ label: 'events', env: eventsEnv({ queues, current, exchange }), publisher: testPublisher() })
  await waitFor(() => t.publisher!.isConnected(), 'the publisher to connect')
})
afterAll(async () => {
  await t.close()
  await broker.close()
})

const received = (userId: string, queue: string) => broker.deliveries.filter((d) => d.queue === queue && d.body.id === userId)
const namesAndBodies = (userId: string, queue: string) => received(userId, queue).map((d) => [d.properties.contentType, d.body])
const fullNames = (userId: string, queue: string) => received(userId, queue).map((d) => d.body.full_name)

describe('the old wire format', () => {
  test('legacy consumers on every listed queue receive user.created, user.updated and user.deleted with the old bodies', async () => {
    const user = await t.registerUser({ full_name: 'Wire Format' })
    await t.call('PUT', '/api/users/update/', { token: user.access, body: { full_name: 'Wire Renamed' } })
    await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })

    await waitFor(() => queues.every((queue) => received(user.id, queue).length === 3), 'three events on each queue')
    // The old body, with email_verified added (the contract allows it; old consumers ignore it).
    const record = { id: user.id, email: user.email, email_verified: false, profile_pic: null }
    for (const queue of queues)
      expect(namesAndBodies(user.id, queue)).toEqual([
        ['user.created', { ...record, full_name: 'Wire Format' }],
        ['user.updated', { ...record, full_name: 'Wire Renamed' }],
        ['user.deleted', { id: user.id }],
      ])
  })

  test('every copy carries the contract properties and is routed through the default exchange', async () => {
    const user = await t.registerUser()
    await waitFor(() => queues.every((queue) => received(user.id, queue).length === 1), 'the created event on each queue')
    const copies = queues.map((queue) => received(user.id, queue)[0]!)
    for (const copy of copies) {
      expect(copy.routingKey).toBe(copy.queue)
      expect(copy.properties).toMatchObject({
        contentType: 'user.created',
        type: 'user.created',
        appId: 'users',
        deliveryMode: 2,
        timestamp: Math.floor(t.clock.now() / 1000),
      })
      expect(copy.properties.messageId).toMatch(/^[0-9a-f-]{36}$/)
    }
    expect(new Set(copies.map((copy) => copy.properties.messageId)).size).toBe(1)
  })

  test('nothing is published to CURRENT_QUEUE, though QUEUE_LIST names it', async () => {
    const user = await t.registerUser()
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Not For Me' } })
    await waitFor(() => queues.every((queue) => received(user.id, queue).length === 2), 'both events on the listed queues')
    await waitFor(() => received(user.id, topicQueue).length === 2, 'both events on the exchange')
    expect(received(user.id, current)).toEqual([])
  })

  test('a consumer bound to the topic exchange receives every event with its name as the routing key', async () => {
    const user = await t.registerUser({ full_name: 'Topic Reader' })
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Topic Renamed' } })
    await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })

    await waitFor(() => received(user.id, topicQueue).length === 3, 'three events on the exchange')
    const copies = received(user.id, topicQueue)
    expect(copies.map((copy) => copy.routingKey)).toEqual(['user.created', 'user.updated', 'user.deleted'])
    expect(copies.map((copy) => copy.properties.contentType)).toEqual(['user.created', 'user.updated', 'user.deleted'])
    expect(copies.map((copy) => copy.body.full_name)).toEqual(['Topic Reader', 'Topic Renamed', undefined])
  })
})

describe('order and atomicity', () => {
  test('ten rapid updates of one user arrive in order on every queue and on the exchange', async () => {
    const user = await t.registerUser({ full_name: 'Rapid 0' })
    const names = Array.from({ length: 10 }, (_, i) => `Rapid ${i + 1}`)
    for (const name of names) await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: name } })

    for (const queue of [...queues, topicQueue]) {
      await waitFor(() => received(user.id, queue).length === 11, `eleven events on ${queue}`)
      expect(fullNames(user.id, queue)).toEqual(['Rapid 0', ...names])
    }
  })

  test('an update that changes nothing emits nothing', async () => {
    const user = await t.registerUser({ full_name: 'Same Name' })
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Same Name', email: user.email } })
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Changed Name' } })

    await waitFor(() => fullNames(user.id, queues[0]!).includes('Changed Name'), 'the real change')
    expect(fullNames(user.id, queues[0]!)).toEqual(['Same Name', 'Changed Name'])
  })

  test('a change whose transaction rolls back at commit emits nothing', async () => {
    // A deferred constraint trigger fails the commit itself, after both the change and its event were written.
    await t.deps.db.execute(sql`
      create function test_reject_at_commit() returns trigger language plpgsql as $$
      begin
        if new.full_name = 'Rolled Back' then raise exception 'rejected at commit'; end if;
        return null;
      end $$`)
    await t.deps.db.execute(sql`
      create constraint trigger test_reject_at_commit after update on users
      deferrable initially deferred for each row execute function test_reject_at_commit()`)
    const user = await t.registerUser({ full_name: 'Before' })

    const failed = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Rolled Back' } })
    expect(failed.status).toBe(500)
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'After' } })

    await waitFor(() => fullNames(user.id, queues[0]!).includes('After'), 'the next change')
    expect(fullNames(user.id, queues[0]!)).toEqual(['Before', 'After'])
  })
})

describe('latency and readiness', () => {
  test('a PUT /update/ reaches the queue within milliseconds of its response, long before the sweep', async () => {
    const user = await t.registerUser()
    await waitFor(async () => (await t.deps.relay.status()).pending === 0, 'the created event to be published')
    // A quiet period, not a condition: the relay exposes no "round over" signal, and the test needs it past
    // its last read of this round, so that from here only a wake-up or the sweep makes it look again.
    await Bun.sleep(100)

    const response = await t.call('PUT', '/api/users/update/', { token: user.access, body: { full_name: 'Fast' } })
    const respondedAt = performance.now()
    expect(response.status).toBe(200)
    await waitFor(() => received(user.id, queues[0]!).length === 2, 'the updated event')
    // The sweep runs every 5 s: only the after-response wake-up explains an arrival this soon.
    expect(received(user.id, queues[0]!)[1]!.receivedAt - respondedAt).toBeLessThan(500)
  })

  test('/health/ready names the database, Redis, the broker and the outbox, all up', async () => {
    const response = await t.call('GET', '/health/ready')
    expect(response.status).toBe(200)
    expect(response.body.status).toBe('ok')
    expect(Object.keys(response.body.checks).sort()).toEqual(['broker', 'database', 'mail', 'outbox', 'redis'])
    for (const check of Object.values(response.body.checks)) expect(check).toMatchObject({ status: 'up' })
  })
})
