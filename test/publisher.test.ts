import { afterAll, afterEach, beforeAll, expect, test } from 'bun:test'
import { connect } from 'amqplib'
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import { createAmqpPublisher, PublishError } from '../src/events/publisher'
import type { AmqpPublisherOptions, LogFn, OutboundEvent, Publisher, PublisherLogger } from '../src/events/publisher'
import { startTcpProxy } from './support/tcp-proxy'
import type { TcpProxy } from './support/tcp-proxy'
import { waitFor } from './support/wait'

const BROKER_PORT = 5672
const BROKER_URL = `amqp://guest:guest@127.0.0.1:${BROKER_PORT}`
const RUN = `test.users.${crypto.randomUUID().slice(0, 8)}`
const CREATED_AT = new Date('2024-05-06T07:08:09.789Z')
const FAST_BACKOFF = { initialMs: 50, maxMs: 400 }

const createdQueues = new Set<string>()
const createdExchanges = new Set<string>()
const publishers: Publisher[] = []
const proxies: TcpProxy[] = []
const unhandled: unknown[] = []
const recordUnhandled = (reason: unknown) => unhandled.push(reason)

let admin: ChannelModel
let channel: Channel
let counter = 0

beforeAll(async () => {
  process.on('unhandledRejection', recordUnhandled)
  process.on('uncaughtException', recordUnhandled)
  admin = await connect(BROKER_URL)
  channel = await admin.createChannel()
})

afterEach(async () => {
  await Promise.all(publishers.splice(0).map((publisher) => publisher.close()))
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()))
  expect(unhandled).toEqual([])
})

afterAll(async () => {
  for (const queue of createdQueues) await channel.deleteQueue(queue)
  for (const exchange of createdExchanges) await channel.deleteExchange(exchange)
  await admin.close()
  process.off('unhandledRejection', recordUnhandled)
  process.off('uncaughtException', recordUnhandled)
})

type Received = { queue: string; body: unknown; message: ConsumeMessage }
type LogEntry = { level: keyof PublisherLogger; objOrMsg: object | string; msg?: string }

function uniqueName(kind: string): string {
  counter += 1
  return `${RUN}.${kind}${counter}`
}

function event(name: string, payload: unknown): OutboundEvent {
  return { id: crypto.randomUUID(), name, payload, createdAt: CREATED_AT }
}

function capturingLogger(): { logger: PublisherLogger; entries: LogEntry[] } {
  const entries: LogEntry[] = []
  const at =
    (level: keyof PublisherLogger): LogFn =>
    (objOrMsg, msg) =>
      entries.push({ level, objOrMsg, msg })
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, entries }
}

// The exchange is required here so no test ever falls back to the shared `users` exchange.
function startPublisher(options: Partial<AmqpPublisherOptions> & { queues: string[]; exchange: string }): Publisher {
  const publisher = createAmqpPublisher({
    url: BROKER_URL,
    queueDurable: false,
    logger: capturingLogger().logger,
    backoff: FAST_BACKOFF,
    ...options,
  })
  publishers.push(publisher)
  return publisher
}

async function publishError(promise: Promise<void>): Promise<PublishError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  )
  if (!(error instanceof PublishError)) throw new Error(`expected a PublishError, got ${String(error)}`)
  return error
}

/** Declares and consumes a queue the way the old Python services did: non-durable, default args, dispatch on content type. */
async function legacyConsumer(queue: string, into: Received[]): Promise<void> {
  await channel.assertQueue(queue, { durable: false })
  createdQueues.add(queue)
  const record = (body: unknown, message: ConsumeMessage) => into.push({ queue, body, message })
  const handlers: Record<string, (body: unknown, message: ConsumeMessage) => void> = {
    'user.created': record,
    'user.updated': record,
    'user.deleted': record,
  }
  await channel.consume(queue, (message) => {
    if (message === null) return
    handlers[message.properties.contentType]?.(JSON.parse(message.content.toString('utf8')), message)
    channel.ack(message)
  })
}

/** Declares the topic exchange and a queue bound to it with `user.*`. */
async function topicConsumer(exchange: string, into: Received[]): Promise<void> {
  await channel.assertExchange(exchange, 'topic', { durable: true })
  createdExchanges.add(exchange)
  const queue = uniqueName('topic')
  await channel.assertQueue(queue, { durable: false })
  createdQueues.add(queue)
  await channel.bindQueue(queue, exchange, 'user.*')
  await channel.consume(queue, (message) => {
    if (message === null) return
    into.push({ queue, body: JSON.parse(message.content.toString('utf8')), message })
    channel.ack(message)
  })
}

function lifecycle(): OutboundEvent[] {
  return [
    event('user.created', { id: 'u1', email: 'ada@example.com', name: 'Ada' }),
    event('user.updated', { id: 'u1', changes: { name: 'Ada L.' }, tags: ['a', 'ü'] }),
    event('user.deleted', { id: 'u1', deletedAt: null }),
  ]
}

function expectLegacyProperties(message: ConsumeMessage, sent: OutboundEvent): void {
  expect(message.properties).toMatchObject({
    contentType: sent.name,
    type: sent.name,
    messageId: sent.id,
    timestamp: Math.floor(CREATED_AT.getTime() / 1000),
    appId: 'users',
    deliveryMode: 2,
  })
}

test('legacy consumers on every listed queue receive created/updated/deleted with the exact wire format', async () => {
  const queues = [uniqueName('q'), uniqueName('q')]
  const exchange = uniqueName('x')
  const received: Received[] = []
  for (const queue of queues) await legacyConsumer(queue, received)
  await topicConsumer(exchange, [])
  const publisher = startPublisher({ queues, exchange })
  await waitFor(publisher.isConnected, 'connection')

  const events = lifecycle()
  await publisher.publish(events)

  await waitFor(() => received.length === 6, 'six deliveries')
  for (const queue of queues) {
    const copies = received.filter((r) => r.queue === queue)
    expect(copies.map((r) => r.body)).toEqual(events.map((e) => e.payload))
    copies.forEach((copy, i) => {
      const sent = events[i]
      if (sent === undefined) throw new Error('more copies than events')
      expectLegacyProperties(copy.message, sent)
      expect(copy.message.fields).toMatchObject({ exchange: '', routingKey: queue })
    })
  }
})

test('a consumer bound to the topic exchange with user.* receives every event keyed by its name', async () => {
  const exchange = uniqueName('x')
  const received: Received[] = []
  await topicConsumer(exchange, received)
  const queue = uniqueName('q')
  await legacyConsumer(queue, [])
  const publisher = startPublisher({ queues: [queue], exchange })
  await waitFor(publisher.isConnected, 'connection')

  const events = lifecycle()
  await publisher.publish(events)

  await waitFor(() => received.length === 3, 'three deliveries')
  expect(received.map((r) => r.body)).toEqual(events.map((e) => e.payload))
  received.forEach((copy, i) => {
    const sent = events[i]
    if (sent === undefined) throw new Error('more copies than events')
    expect(copy.message.fields).toMatchObject({ exchange, routingKey: sent.name })
    expectLegacyProperties(copy.message, sent)
  })
})

test('ten events in one publish arrive in order on the queue and the exchange', async () => {
  const queue = uniqueName('q')
  const exchange = uniqueName('x')
  const viaQueue: Received[] = []
  const viaExchange: Received[] = []
  await legacyConsumer(queue, viaQueue)
  await topicConsumer(exchange, viaExchange)
  const publisher = startPublisher({ queues: [queue], exchange })
  await waitFor(publisher.isConnected, 'connection')

  const events = Array.from({ length: 10 }, (_, seq) => event('user.updated', { id: 'u1', seq }))
  await publisher.publish(events)

  await waitFor(() => viaQueue.length === 10 && viaExchange.length === 10, 'ten deliveries on each')
  expect(viaQueue.map((r) => r.message.properties.messageId)).toEqual(events.map((e) => e.id))
  expect(viaExchange.map((r) => r.message.properties.messageId)).toEqual(events.map((e) => e.id))
})

test('publish rejects as unroutable when a target queue is deleted out from under a connected publisher', async () => {
  const kept = uniqueName('q')
  const doomed = uniqueName('q')
  const exchange = uniqueName('x')
  const received: Received[] = []
  await legacyConsumer(kept, received)
  await topicConsumer(exchange, [])
  await channel.assertQueue(doomed, { durable: false })
  const publisher = startPublisher({ queues: [kept, doomed], exchange })
  await waitFor(publisher.isConnected, 'connection')
  await channel.deleteQueue(doomed)

  const events = lifecycle()
  const error = await publishError(publisher.publish(events))

  expect(error.reason).toBe('unroutable')
  expect(error.index).toBe(0)
  expect(error.event).toBe(events[0] as OutboundEvent)
  expect(error.message).toContain(doomed)
  expect(publisher.isConnected()).toBe(true)
})

test('a topic-exchange copy that no binding routes fails the publish only when requireExchangeRoute is on', async () => {
  const queue = uniqueName('q')
  await legacyConsumer(queue, [])
  const strictExchange = uniqueName('x')
  const lenientExchange = uniqueName('x')
  createdExchanges.add(strictExchange).add(lenientExchange)
  const strict = startPublisher({ queues: [queue], exchange: strictExchange, requireExchangeRoute: true })
  const lenient = startPublisher({ queues: [queue], exchange: lenientExchange })
  await waitFor(() => strict.isConnected() && lenient.isConnected(), 'connections')

  const error = await publishError(strict.publish(lifecycle()))
  expect(error.reason).toBe('unroutable')
  expect(error.message).toContain(strictExchange)
  await lenient.publish(lifecycle())
})

test('a queue durability mismatch is logged as PRECONDITION_FAILED and publish rejects without crashing', async () => {
  const queue = uniqueName('q')
  const exchange = uniqueName('x')
  await channel.assertQueue(queue, { durable: false })
  createdQueues.add(queue)
  const { logger, entries } = capturingLogger()
  const publisher = startPublisher({ queues: [queue], exchange, queueDurable: true, logger })

  const isMismatch = (entry: LogEntry) => entry.level === 'error' && String(entry.msg).includes('PRECONDITION_FAILED')
  await waitFor(() => entries.filter(isMismatch).length >= 2, 'the mismatch to be logged on a retry')
  expect(entries.find(isMismatch)?.msg).toContain(queue)

  const startedAt = performance.now()
  const error = await publishError(publisher.publish(lifecycle()))
  expect(error.reason).toBe('disconnected')
  expect(performance.now() - startedAt).toBeLessThan(500)
  expect(publisher.isConnected()).toBe(false)
  expect((await channel.checkQueue(queue)).queue).toBe(queue)
})

/** A publisher that reaches the broker through a proxy the test controls, with a legacy consumer on its queue. */
async function proxiedPublisher(timeoutMs: number) {
  const queue = uniqueName('q')
  const exchange = uniqueName('x')
  const received: Received[] = []
  await legacyConsumer(queue, received)
  await topicConsumer(exchange, [])
  const proxy = await startTcpProxy({ targetPort: BROKER_PORT })
  proxies.push(proxy)
  const publisher = startPublisher({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, queues: [queue], exchange, timeoutMs })
  return { received, proxy, publisher }
}

test('an outage fails publishes fast and the publisher reconnects by itself once the link is back', async () => {
  const { received, proxy, publisher } = await proxiedPublisher(2_000)
  await waitFor(publisher.isConnected, 'connection')
  const [before, during, after] = [event('user.created', { n: 1 }), event('user.updated', { n: 2 }), event('user.deleted', { n: 3 })]
  await publisher.publish([before])

  proxy.cut()
  let startedAt = performance.now()
  const lost = await publishError(publisher.publish([during]))
  expect(['connection-lost', 'disconnected']).toContain(lost.reason)
  expect(performance.now() - startedAt).toBeLessThan(1_000)
  await waitFor(() => !publisher.isConnected(), 'the drop to be noticed', 1_000)
  startedAt = performance.now()
  expect((await publishError(publisher.publish([during]))).reason).toBe('disconnected')
  expect(performance.now() - startedAt).toBeLessThan(500)

  await Bun.sleep(500)
  proxy.restore()
  await waitFor(publisher.isConnected, 'reconnection', 5_000)
  await publisher.publish([after])

  await waitFor(() => received.some((r) => r.message.properties.messageId === after.id), 'the post-outage delivery')
  expect(received.map((r) => r.message.properties.messageId)).toContain(before.id)
  expect(unhandled).toEqual([])
}, 10_000)

test('a stalled broker makes publish reject with a timeout instead of hanging, and close stays bounded', async () => {
  const timeoutMs = 300
  const { proxy, publisher } = await proxiedPublisher(timeoutMs)
  await waitFor(publisher.isConnected, 'connection')

  proxy.stall()
  const stuck = event('user.created', { n: 1 })
  let startedAt = performance.now()
  const error = await publishError(publisher.publish([stuck]))
  expect(error.reason).toBe('timeout')
  expect(error.event).toBe(stuck)
  expect(performance.now() - startedAt).toBeLessThan(timeoutMs + 200)

  startedAt = performance.now()
  await publisher.close()
  expect(performance.now() - startedAt).toBeLessThan(timeoutMs + 200)
  expect(publisher.isConnected()).toBe(false)
})
