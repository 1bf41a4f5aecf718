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
