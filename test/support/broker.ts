import { connect } from 'amqplib'
import type { ConsumeMessage, MessageProperties } from 'amqplib'
import type { Config } from '../../src/config'
import { createPublisher } from '../../src/deps'
import type { Logger } from '../../src/logger'

export const BROKER_PORT = 5672
export const BROKER_URL = `amqp://guest:guest@127.0.0.1:${BROKER_PORT}`
export const FAST_BACKOFF = { initialMs: 50, maxMs: 400 }

/** One message as a consumer saw it. */
export type Delivery = { queue: string; routingKey: string; body: Record<string, unknown>; properties: MessageProperties; receivedAt: number }

/**
 * The machine's RabbitMQ, seen by the test's own consumers: queue and exchange names unique to the test
 * file (`label`), all deleted by `close()`.
 */
export async function openTestBroker(label: string) {
  const connection = await connect(BROKER_URL)
  const channel = await connection.createChannel()
  const prefix = `test.users.${label}.${crypto.randomUUID().slice(0, 8)}`
  const queues = new Set<string>()
  const exchanges = new Set<string>()
  const deliveries: Delivery[] = []
  let counter = 0

  const record = (queue: string) => {
    const keep = (message: ConsumeMessage) => deliveries.push(toDelivery(queue, message))
    // The old services dispatch on the content type: it is the compat contract being tested.
    const handlers: Record<string, (message: ConsumeMessage) => void> = { 'user.created': keep, 'user.updated': keep, 'user.deleted': keep }
    return (message: ConsumeMessage | null) => {
      if (message === null) return
      handlers[message.properties.contentType]?.(message)
      channel.ack(message)
    }
  }

  return {
    deliveries,
    /** A name no other test file uses. */
    name: (kind: string) => `${prefix}.${kind}${++counter}`,
    /** Declares and consumes a queue as the old Python services did: `queue_declare(queue=name)`, non-durable. */
    async legacyConsumer(queue: string) {
      await channel.assertQueue(queue, { durable: false })
      queues.add(queue)
      await channel.consume(queue, record(queue))
    },
    /** A queue of the test's own bound to the topic exchange with `user.*`; returns the queue's name. */
    async topicConsumer(exchange: string) {
      await channel.assertExchange(exchange, 'topic', { durable: true })
      exchanges.add(exchange)
      const { queue } = await channel.assertQueue(`${prefix}.topic${++counter}`, { durable: false })
      queues.add(queue)
      await channel.bindQueue(queue, exchange, 'user.*')
      await channel.consume(queue, record(queue))
      return queue
    },
    /** Remembers a queue or exchange that something else declared, so close() deletes it. */
    track(kind: 'queue' | 'exchange', name: string) {
      ;(kind === 'queue' ? queues : exchanges).add(name)
    },
    async close() {
      for (const queue of queues) await channel.deleteQueue(queue)
      for (const exchange of exchanges) await channel.deleteExchange(exchange)
      await connection.close()
    },
  }
}

export type TestBroker = Awaited<ReturnType<typeof openTestBroker>>

/** The events settings of an app whose targets are `queues`; `current` is listed too, as the fleet does, and must get nothing. */
export const eventsEnv = ({ queues, current, exchange }: { queues: string[]; current: string; exchange: string }) => ({
  QUEUE_LIST: [...queues, current].join(','),
  CURRENT_QUEUE: current,
  EVENTS_EXCHANGE: exchange,
  QUEUE_DURABLE: 'false',
})

/** A publisher factory for createTestApp: the app's own wiring, with a fast reconnect. */
export const testPublisher =
  (url = BROKER_URL) =>
  (config: Config, logger: Logger) =>
    createPublisher(config, url, logger, { backoff: FAST_BACKOFF, timeoutMs: 2_000 })

function toDelivery(queue: string, message: ConsumeMessage): Delivery {
  return {
    queue,
    routingKey: message.fields.routingKey,
    body: JSON.parse(message.content.toString('utf8')),
    properties: message.properties,
    receivedAt: performance.now(),
  }
}
