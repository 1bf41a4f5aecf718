import { connect } from 'amqplib'
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib'
import { backoffDelay } from '../backoff'
import { raceTimer } from '../timeout'

/** A domain event taken from the outbox, published as-is. */
export type OutboundEvent = { id: string; name: string; payload: unknown; createdAt: Date }

/** Publishes outbox events to RabbitMQ with broker confirms. */
export type Publisher = {
  /** Publishes every copy of each event in order; resolves once the broker confirmed them all, else rejects with a PublishError. */
  publish(events: OutboundEvent[]): Promise<void>
  /** Whether a confirm channel with the asserted topology is open right now. */
  isConnected(): boolean
  /** Stops reconnecting and closes the connection; in-flight publishes reject. */
  close(): Promise<void>
}

/** Pino-compatible logging function: `(obj, msg)` or `(msg)`. */
export type LogFn = (objOrMsg: object | string, msg?: string) => void

/** The subset of a pino logger the publisher uses. */
export type PublisherLogger = { info: LogFn; warn: LogFn; error: LogFn }

/** Options for createAmqpPublisher. */
export type AmqpPublisherOptions = {
  url: string
  /** Each event is sent to each of these queues through the default exchange. */
  queues: string[]
  /** Durable topic exchange that also receives every event, keyed by event name; `users` by default. */
  exchange?: string
  /** Must match how the queues' consumers declare them, or the broker refuses the declaration. */
  queueDurable: boolean
  logger?: PublisherLogger
  backoff?: { initialMs: number; maxMs: number }
  /** Upper bound for connecting, declaring the topology, and one publish call. */
  timeoutMs?: number
  /**
   * Whether a topic-exchange copy that no binding routes counts as a failure. Off by default: the exchange is
   * for consumers that may not exist yet, and an unbound exchange must not stall the outbox behind it.
   */
  requireExchangeRoute?: boolean
}

/** Why a publish failed; every reason means the caller must keep the events and retry. */
export type PublishFailure = 'disconnected' | 'invalid-payload' | 'nacked' | 'unroutable' | 'connection-lost' | 'timeout'

/** A publish that was not fully confirmed; `event` is the first event (in the given order) that failed. */
export class PublishError extends Error {
  override readonly name = 'PublishError'
  readonly reason: PublishFailure
  readonly event: OutboundEvent
  readonly index: number

  constructor(reason: PublishFailure, event: OutboundEvent, index: number, message: string, options?: ErrorOptions) {
    super(`${message} (event ${event.name} ${event.id} at index ${index})`, options)
    this.reason = reason
    this.event = event
    this.index = index
  }
}

const DEFAULT_EXCHANGE = 'users'
const APP_ID = 'users'
const PRECONDITION_FAILED = 406

type Session = {
  connection: ChannelModel
  channel: ConfirmChannel
  returnWatchers: Set<(message: Message) => void>
  lost: boolean
}

type Copy = { event: OutboundEvent; index: number; exchange: string; routingKey: string; outcome?: 'acked' | 'failed' | 'unsent' }

type Settings = {
  options: AmqpPublisherOptions
  exchange: string
  log: PublisherLogger
  backoff: { initialMs: number; maxMs: number }
  timeoutMs: number
  requireExchangeRoute: boolean
}

/** The connection a publisher keeps: the live session, if any, and how to stop keeping it. */
type Connection = { session(): Session | undefined; close(): Promise<void> }

/** Creates a publisher that connects in the background and keeps reconnecting until closed. */
export function createAmqpPublisher(options: AmqpPublisherOptions): Publisher {
  const settings: Settings = {
    options,
    exchange: options.exchange ?? DEFAULT_EXCHANGE,
    log: options.logger ?? consoleLogger,
    // A short cap: events flow again within about a second of the broker's return (a 30 s cap made
    // recovery take as long as the outage), and one connect per second does not hammer a broker still down.
    backoff: options.backoff ?? { initialMs: 200, maxMs: 1_000 },
    timeoutMs: options.timeoutMs ?? 5_000,
    requireExchangeRoute: options.requireExchangeRoute ?? false,
  }
  const connection = keepConnected(settings)
  return {
    publish: (events) => publishEvents(settings, connection.session(), events),
    isConnected: () => connection.session() !== undefined,
    close: connection.close,
  }
}

/** Connects now, and again with backoff whenever the connection or channel is lost, until closed. */
function keepConnected(settings: Settings): Connection {
  const { options, exchange, log, backoff, timeoutMs } = settings
  let session: Session | undefined
  let failures = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let attempt: Promise<void> | undefined
  let closing = false

  // Bounded because a stalled broker never answers connection.close.
  function closeQuietly(connection: ChannelModel): Promise<void> {
    return withTimeout(connection.close(), timeoutMs, 'close').catch(ignore)
  }

  function scheduleConnect(): number | undefined {
    if (closing || timer !== undefined) return undefined
    const delayMs = Math.round(backoffDelay(failures, backoff))
    timer = setTimeout(() => {
      timer = undefined
      startAttempt()
    }, delayMs)
    return delayMs
  }

  function startAttempt(): void {
    attempt = openSession().finally(() => {
      attempt = undefined
    })
  }

  function lose(current: Session, reason: string): void {
    if (session !== current) return
    session = undefined
    current.lost = true
    void closeQuietly(current.connection)
    const delayMs = scheduleConnect()
    log.warn({ reason, delayMs }, 'amqp publisher: connection lost; publishes fail until reconnected')
  }

  async function openSession(): Promise<void> {
    let connection: ChannelModel | undefined
    try {
      // amqplib's socket timeout bounds the TCP connect and the AMQP handshake.
      connection = await connect(options.url, { timeout: timeoutMs })
      const opened = connection
      opened.on('error', (err: Error) => log.warn({ err }, 'amqp publisher: connection error'))
      opened.on('blocked', (reason: string) => log.warn({ reason }, 'amqp publisher: broker blocked publishing'))
      opened.on('unblocked', () => log.info('amqp publisher: broker unblocked publishing'))
      opened.on('close', () => {
        if (session?.connection === opened) lose(session, 'connection closed')
      })
      const isLive = (channel: ConfirmChannel) => session?.channel === channel
      const channel = await withTimeout(declareTopology(settings, opened, isLive), timeoutMs, 'topology declaration')
      if (closing) {
        await closeQuietly(opened)
        return
      }
      const current: Session = { connection: opened, channel, returnWatchers: new Set(), lost: false }
      channel.on('return', (message: Message) => {
        for (const watch of current.returnWatchers) watch(message)
      })
      channel.on('close', () => lose(current, 'channel closed'))
      session = current
      failures = 0
      log.info({ exchange, queues: options.queues }, 'amqp publisher: connected')
    } catch (err) {
      failures += 1
      if (connection !== undefined) void closeQuietly(connection)
      const delayMs = scheduleConnect()
      if (!closing) log.warn({ err, attempt: failures, delayMs }, 'amqp publisher: connect failed; retrying with backoff')
    }
  }

  startAttempt()

  return {
    session: () => session,
    async close() {
      closing = true
      clearTimeout(timer)
      timer = undefined
      await attempt
      const current = session
      session = undefined
      if (current !== undefined) await closeQuietly(current.connection)
    },
  }
}

/** A confirm channel with the queues and the exchange asserted; `isLive` says whether it is the session's yet. */
async function declareTopology(
  { options, exchange, log }: Settings,
  connection: ChannelModel,
  isLive: (channel: ConfirmChannel) => boolean,
): Promise<ConfirmChannel> {
  const channel = await connection.createConfirmChannel()
  // Only the live session's channel errors are news; setup failures are logged where they happen.
  channel.on('error', (err: Error) => {
    if (isLive(channel)) log.error({ err }, 'amqp publisher: channel error')
  })
  for (const queue of options.queues) {
    try {
      await channel.assertQueue(queue, { durable: options.queueDurable })
    } catch (err) {
      if (errorCode(err) === PRECONDITION_FAILED) {
        log.error(
          { err, queue, queueDurable: options.queueDurable },
          `amqp publisher: queue "${queue}" already exists with different settings (PRECONDITION_FAILED); ` +
            `it must be declared with durable=${options.queueDurable} like its consumers do. Retrying with backoff`,
        )
      }
      throw err
    }
  }
  await channel.assertExchange(exchange, 'topic', { durable: true })
  return channel
}

/** Publishes every copy of each event on the session's channel and waits for the confirms; the first failed copy rejects. */
async function publishEvents(settings: Settings, current: Session | undefined, events: OutboundEvent[]): Promise<void> {
  const encoded = encodeEvents(events)
  const first = events[0]
  if (first === undefined) return
  if (current === undefined) throw new PublishError('disconnected', first, 0, 'not connected to RabbitMQ')

  const returned = new Set<string>()
  const watcher = (message: Message) =>
    returned.add(copyKey(message.fields.exchange, message.fields.routingKey, String(message.properties.messageId)))
  current.returnWatchers.add(watcher)
  try {
    const { copies, confirms } = sendCopies(settings, current.channel, encoded)
    await settleWithin(confirms, settings.timeoutMs)
    const failure = copies.map((copy) => copyFailure(copy, returned, current.lost, settings.timeoutMs)).find((error) => error !== undefined)
    if (failure !== undefined) throw failure
  } finally {
    current.returnWatchers.delete(watcher)
  }
}

/** Sends one copy of each event to each queue and one to the exchange; stops at the first the channel refuses outright. */
function sendCopies(
  { options, exchange, requireExchangeRoute }: Settings,
  channel: ConfirmChannel,
  encoded: { event: OutboundEvent; body: Buffer }[],
): { copies: Copy[]; confirms: Promise<void>[] } {
  const copies: Copy[] = []
  const confirms: Promise<void>[] = []
  for (const [index, { event, body }] of encoded.entries()) {
    const targets = [
      ...options.queues.map((queue) => ({ exchange: '', routingKey: queue, mandatory: true })),
      { exchange, routingKey: event.name, mandatory: requireExchangeRoute },
    ]
    for (const target of targets) {
      const copy: Copy = { event, index, exchange: target.exchange, routingKey: target.routingKey }
      copies.push(copy)
      const confirmed = Promise.withResolvers<void>()
      try {
        channel.publish(
          target.exchange,
          target.routingKey,
          body,
          {
            mandatory: target.mandatory,
            persistent: true,
            contentType: event.name,
            type: event.name,
            messageId: event.id,
            timestamp: Math.floor(event.createdAt.getTime() / 1000),
            appId: APP_ID,
          },
          (err: unknown) => {
            copy.outcome = err ? 'failed' : 'acked'
            confirmed.resolve()
          },
        )
      } catch {
        // amqplib throws synchronously once the channel or connection is closing; later copies would throw too.
        copy.outcome = 'unsent'
        return { copies, confirms }
      }
      confirms.push(confirmed.promise)
    }
  }
  return { copies, confirms }
}

/** The error a copy's outcome amounts to, if any: returned, unconfirmed in time, unsent, or nacked (a dropped connection's nack included). */
function copyFailure(copy: Copy, returned: Set<string>, lost: boolean, timeoutMs: number): PublishError | undefined {
  const { event, index } = copy
  if (returned.has(copyKey(copy.exchange, copy.routingKey, event.id))) {
    const target = copy.exchange === '' ? `queue "${copy.routingKey}"` : `exchange "${copy.exchange}" key "${copy.routingKey}"`
    return new PublishError('unroutable', event, index, `broker returned the copy for ${target} as unroutable`)
  }
  switch (copy.outcome) {
    case 'acked':
      return undefined
    case undefined:
      return new PublishError('timeout', event, index, `broker did not confirm within ${timeoutMs} ms`)
    case 'unsent':
      return new PublishError('connection-lost', event, index, 'channel to RabbitMQ was closing; message not sent')
    case 'failed':
      return lost
        ? new PublishError('connection-lost', event, index, 'connection to RabbitMQ dropped before the broker confirmed')
        : new PublishError('nacked', event, index, 'broker nacked the message')
  }
}

function encodeEvents(events: OutboundEvent[]): { event: OutboundEvent; body: Buffer }[] {
  return events.map((event, index) => {
    let json: string | undefined
    try {
      json = JSON.stringify(event.payload)
    } catch (cause) {
      throw new PublishError('invalid-payload', event, index, 'payload is not JSON-serialisable', { cause })
    }
    if (json === undefined) throw new PublishError('invalid-payload', event, index, 'payload is not JSON-serialisable')
    return { event, body: Buffer.from(json) }
  })
}

function copyKey(exchange: string, routingKey: string, messageId: string): string {
  return JSON.stringify([exchange, routingKey, messageId])
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  raceTimer(promise, ms, () => {
    throw new Error(`${what} timed out after ${ms} ms`)
  })

async function settleWithin(promises: Promise<void>[], ms: number): Promise<void> {
  await raceTimer(Promise.all(promises), ms, () => undefined)
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
}

function ignore(): void {}

function toConsole(write: (...data: unknown[]) => void): LogFn {
  return (objOrMsg, msg) => (msg === undefined ? write(objOrMsg) : write(msg, objOrMsg))
}

const consoleLogger: PublisherLogger = {
  info: toConsole(console.info),
  warn: toConsole(console.warn),
  error: toConsole(console.error),
}
