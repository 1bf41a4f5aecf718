import type { DbHandle } from '../db'
import type { Publisher } from '../events/publisher'
import type { Relay } from '../events/relay'
import { masterClients, REDIS_COMMAND_TIMEOUT_MS, type RedisClient, type RedisNodeClient } from '../redis/client'
import { raceTimer } from '../timeout'

/** The outcome of one readiness check; extra fields explain it. */
export type CheckResult = { status: 'up' | 'down' } & Record<string, unknown>

/** One named readiness check; deps.readiness lists every configured backing service's. */
export type ReadinessCheck = { name: string; check(): Promise<CheckResult> }

// The relay is stuck, not just busy, when the oldest event still waits this long with the broker up.
const OUTBOX_STUCK_AFTER_MS = 60_000

/** Whether the database answers a query. */
export const databaseCheck = (database: Pick<DbHandle, 'ping' | 'isUp'>): ReadinessCheck => ({
  name: 'database',
  // The driver's message would name hosts and ports on an unauthenticated route.
  check: () => database.ping().then(
    () => ({ status: 'up' }),
    () => ({
      status: 'down',
      error: database.isUp?.() === false ? 'the database cannot be reached; requests answer 503 until it is back' : 'the database did not answer',
    }),
  ),
})

/**
 * Whether every Redis master answers a PING (sessions and rate limits need it on every authenticated request;
 * on a cluster each master holds its own share of them), and whether any may evict keys: an evicted session
 * logs its user out without a word, so anything but `noeviction` is reported (the check stays up: the service
 * works, it just may lose sessions).
 */
export const redisCheck = (redis: RedisClient): ReadinessCheck => ({
  name: 'redis',
  check: async () => {
    const nodes = await withinDeadline(masterClients(redis)).catch(() => undefined)
    if (!nodes) return { status: 'down', error: 'Redis did not answer' }
    const answered = await Promise.all(nodes.map((node) => withinDeadline(node.ping()).then(() => true, () => false)))
    const silent = answered.filter((ok) => !ok).length
    // The addresses stay out: the route is unauthenticated.
    if (silent > 0) return { status: 'down', error: nodes.length === 1 ? 'Redis did not answer' : `${silent} of ${nodes.length} Redis masters did not answer` }
    return { status: 'up', ...(nodes.length > 1 && { masters: nodes.length }), ...(await evictionPolicy(nodes)) }
  },
})

/** What the Redis masters say of their eviction policy, with a warning when one may evict session keys. */
export async function evictionPolicy(nodes: Pick<RedisNodeClient, 'configGet'>[]): Promise<{ maxmemory_policy: string; warning?: string }> {
  // Managed Redis services often refuse CONFIG: then nobody here can tell, and the operator must check.
  const policies = await Promise.all(
    nodes.map((node) =>
      withinDeadline(node.configGet('maxmemory-policy')).then(
        (config) => config['maxmemory-policy'] ?? 'unknown',
        () => 'unknown',
      ),
    ),
  )
  // The worst master decides: one evicting master loses the sessions in its slots.
  const policy = policies.find((found) => found !== 'noeviction') ?? 'noeviction'
  if (policy === 'noeviction') return { maxmemory_policy: policy }
  const where = nodes.length > 1 ? 'a Redis master' : 'Redis'
  const warning =
    policy === 'unknown'
      ? `${where} refused CONFIG GET maxmemory-policy: make sure it is noeviction, or sessions may be evicted (users logged out)`
      : `${where}'s maxmemory-policy is ${policy}: under memory pressure it evicts sessions (users logged out); set noeviction`
  return { maxmemory_policy: policy, warning }
}

// A cluster's node clients carry no command timeout of their own; a blackholed master must not hang the check.
const withinDeadline = <T>(promise: Promise<T>): Promise<T> =>
  raceTimer(promise, REDIS_COMMAND_TIMEOUT_MS, () => {
    throw new Error('no answer')
  })

/** Whether the publisher has a confirm channel open to RabbitMQ. */
export const brokerCheck = (publisher: Pick<Publisher, 'isConnected'>): ReadinessCheck => ({
  name: 'broker',
  check: async () => (publisher.isConnected() ? { status: 'up' } : { status: 'down', error: 'not connected to RabbitMQ' }),
})

/** Down when events were given up on (they need an operator) or the backlog is stuck although the broker is up. */
export const outboxCheck = (relay: Pick<Relay, 'status'>): ReadinessCheck => ({
  name: 'outbox',
  check: async () => {
    const { broker, pending, failed, oldestPendingMs, lastError } = await relay.status()
    const details = { pending, failed, oldest_pending_ms: oldestPendingMs, ...(lastError && { last_error: lastError }) }
    if (failed > 0) return { status: 'down', error: `${failed} event(s) failed after the maximum attempts`, ...details }
    if (broker === 'connected' && (oldestPendingMs ?? 0) > OUTBOX_STUCK_AFTER_MS)
      return { status: 'down', error: 'events are not being delivered', ...details }
    return { status: 'up', ...details }
  },
})
