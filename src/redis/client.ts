import { createClient, type RedisClientType } from 'redis'
import { backoffDelay } from '../backoff'
import type { Logger } from '../logger'
import { addTracingChannelHasSubscribers } from './tracing'

/** The node-redis client the Redis-backed stores expect. */
export type RedisClient = RedisClientType


const RECONNECT_BACKOFF = { initialMs: 50, maxMs: 1_000 }
// A blackholed connection would otherwise hang every authenticated request; fail and let the route answer 503.
const COMMAND_TIMEOUT_MS = 1_000

/** The shared backoff, capped so recovery after an outage takes about a second. */
export const reconnectDelay = (retries: number): number => Math.round(backoffDelay(retries + 1, RECONNECT_BACKOFF))

/**
 * Creates a client that reconnects forever and rejects commands immediately while disconnected.
 * Resolves once connected, or after the first failed attempt (the client keeps retrying in the background),
 * so a Redis outage at boot degrades to 503s instead of blocking startup.
 */
export async function connectRedis(url: string, logger: Pick<Logger, 'info' | 'warn'>): Promise<RedisClient> {
  addTracingChannelHasSubscribers()
  const client: RedisClient = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: { reconnectStrategy: reconnectDelay },
  })
  let healthy = true
  // Without an 'error' listener node-redis' EventEmitter would throw and crash the process.
  client.on('error', (err: unknown) => {
    if (healthy) logger.warn({ err }, 'redis unavailable; commands fail until it is back')
    healthy = false
  })
  client.on('ready', () => {
    if (!healthy) logger.info('redis connection restored')
    healthy = true
  })
  const connected = client.connect().then(
    () => undefined,
    (err: unknown) => logger.warn({ err }, 'redis client stopped connecting'),
  )
  let onFirstFailure = () => {}
  const firstFailure = new Promise<void>((resolve) => (onFirstFailure = resolve))
  client.once('error', onFirstFailure)
  await Promise.race([connected, firstFailure])
  client.off('error', onFirstFailure)
  return client
}

/** The error a command gets when Redis has not answered it within its deadline. */
export class CommandTimeoutError extends Error {
  constructor(ms: number) {
    super(`redis did not answer within ${ms} ms`)
  }
}

/**
 * Bounds how long a command may wait for its reply, with one timer for all of them. node-redis' own
 * per-command timeout arms an `AbortSignal.timeout` (a timer) and two listeners for every command: on
 * the session check of every authenticated request that was half the cost of the call. Here each
 * command is a queue entry; the queue is in start order, so one sweep every quarter of `ms` fails the
 * overdue ones from its head. A command fails between `ms` and 1.25 × `ms` after it started.
 */
export function commandDeadlines(ms: number, now: () => number = performance.now.bind(performance)) {
  type Entry = { startedAt: number; settled: boolean; reject(error: Error): void }
  let queue: Entry[] = []
  let head = 0
  let timer: ReturnType<typeof setInterval> | undefined
  const sweep = () => {
    const at = now()
    for (; head < queue.length; head++) {
      const entry = queue[head]!
      if (entry.settled) continue
      if (at - entry.startedAt < ms) break
      entry.settled = true
      entry.reject(new CommandTimeoutError(ms))
    }
    if (head === queue.length) {
      queue = []
      head = 0
      clearInterval(timer)
      timer = undefined
    } else if (head > 1024) {
      queue = queue.slice(head)
      head = 0
    }
  }
  return {
    /** `command`'s result, or a {@link CommandTimeoutError} once it has waited `ms`. */
    within<T>(command: Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const entry: Entry = { startedAt: now(), settled: false, reject }
        queue.push(entry)
        if (timer === undefined) {
          timer = setInterval(sweep, ms / 4)
          timer.unref()
        }
        command.then(
          (value) => {
            if (entry.settled) return
            entry.settled = true
            resolve(value)
          },
          (error: unknown) => {
            if (entry.settled) return
            entry.settled = true
            reject(error)
          },
        )
      })
    },
    /** Commands not yet settled, for tests. */
    pending: () => queue.slice(head).filter((entry) => !entry.settled).length,
  }
}

/** The client's commands without node-redis' per-command timer; bound them with {@link commandDeadlines}. */
export const withoutCommandTimeout = (client: RedisClient) => client.withCommandOptions({ timeout: 0 }) as unknown as RedisClient

/** The command timeout every client of {@link connectRedis} applies, for the callers that bound commands themselves. */
export const REDIS_COMMAND_TIMEOUT_MS = COMMAND_TIMEOUT_MS
