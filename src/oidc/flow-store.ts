import { createHash } from 'node:crypto'
import type { Clock } from '../clock'
import type { RedisClient } from '../redis/client'
import { redisCall } from '../sessions/redis-scripts'

/**
 * Single-use values that live minutes: a sign-in's state until its callback, and its one-time code until
 * the exchange. Keys are secrets that travel in URLs, so they are stored as hashes.
 */
export interface FlowStore {
  /** Keeps `value` under `key` for `ttlSeconds`. */
  put(key: string, value: string, ttlSeconds: number): Promise<void>
  /** The value under `key`, removed in the same step: of any number of callers racing for it, one gets it. */
  take(key: string): Promise<string | undefined>
}

const hashed = (key: string) => createHash('sha256').update(key).digest('base64url')

/**
 * On Redis: SET with a TTL, then GETDEL, one atomic command, so a replayed state or code finds nothing.
 * Each key stands alone (no script spans two), so on a cluster each goes to its own slot.
 */
export function createRedisFlowStore(options: { client: RedisClient; prefix: string }): FlowStore {
  const { client, prefix } = options
  const key = (name: string) => `${prefix}oidc:${hashed(name)}`
  return {
    async put(name, value, ttlSeconds) {
      await redisCall(() => client.set(key(name), value, { EX: ttlSeconds }))
    },
    async take(name) {
      return (await redisCall(() => client.getDel(key(name)))) ?? undefined
    },
  }
}

const SWEEP_INTERVAL_MS = 60_000

/** In process, for one instance (the embedded default); time comes from the injected clock. */
export function createMemoryFlowStore(options: { clock: Clock }): FlowStore {
  const { clock } = options
  const entries = new Map<string, { value: string; expiresAt: number }>()
  let lastSweep = clock.now()
  // Abandoned sign-ins never come back for their state: dropped once expired, or memory grows with each.
  function sweepIfDue(now: number) {
    if (now - lastSweep < SWEEP_INTERVAL_MS) return
    lastSweep = now
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
  }
  return {
    async put(name, value, ttlSeconds) {
      const now = clock.now()
      sweepIfDue(now)
      entries.set(hashed(name), { value, expiresAt: now + ttlSeconds * 1000 })
    },
    // Synchronous from the read to the delete: atomic with respect to every other call.
    async take(name) {
      const key = hashed(name)
      const entry = entries.get(key)
      entries.delete(key)
      return entry && entry.expiresAt > clock.now() ? entry.value : undefined
    },
  }
}
