import type { Clock } from '../clock'
import type { Database } from '../db'
import { isCluster, type RedisClient } from '../redis/client'
import { findUserById } from './lookup'
import type { UserRow } from './table'

/** Where instances tell each other that a user changed. */
export type InvalidationBus = {
  publish(userId: string): Promise<void>
  /** `onMessage` for every user changed elsewhere; `onGap` when messages may have been missed (a reconnect). */
  subscribe(onMessage: (userId: string) => void, onGap: () => void): Promise<void>
  close(): Promise<void>
}

export type UserCache = ReturnType<typeof createUserCache>

/**
 * The user rows the auth guard reads on every request, kept in this process. A change is forgotten here at
 * once and on every other instance as soon as the bus delivers it (milliseconds); if a message is lost
 * without the connection dropping, an entry still lives at most `ttlMs`: that is the stated staleness bound.
 * A reconnect of the bus empties the cache, since messages sent meanwhile are lost.
 */
export function createUserCache(options: { db: Database; clock: Clock; ttlMs: number; maxEntries: number; bus?: InvalidationBus }) {
  const { db, clock, ttlMs, maxEntries, bus } = options
  const entries = new Map<string, { user: UserRow; expiresAt: number }>()
  const inFlight = new Map<string, Promise<UserRow | undefined>>()
  // Bumped by every invalidation: a read that started before one must not be cached after it.
  let invalidations = 0

  const forget = (userId: string) => {
    invalidations++
    entries.delete(userId)
    inFlight.delete(userId)
  }
  const forgetAll = () => {
    invalidations++
    entries.clear()
    inFlight.clear()
  }

  async function load(userId: string) {
    const startedAt = invalidations
    const user = await findUserById(db, userId)
    if (user && startedAt === invalidations) {
      entries.set(userId, { user, expiresAt: clock.now() + ttlMs })
      // Map keeps insertion order: the first key is the least recently stored.
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value!)
    }
    return user
  }

  return {
    /** The user, from memory when fresh; one database read per user at a time otherwise. */
    get(userId: string): Promise<UserRow | undefined> {
      if (ttlMs <= 0) return findUserById(db, userId)
      const entry = entries.get(userId)
      if (entry && entry.expiresAt > clock.now()) return Promise.resolve(entry.user)
      const waiting = inFlight.get(userId)
      if (waiting) return waiting
      const pending: Promise<UserRow | undefined> = load(userId).finally(() => {
        if (inFlight.get(userId) === pending) inFlight.delete(userId)
      })
      inFlight.set(userId, pending)
      return pending
    },

    /** The user when this process holds a fresh copy, without a promise; undefined otherwise (then {@link get}). */
    peek(userId: string): UserRow | undefined {
      const entry = entries.get(userId)
      return entry && entry.expiresAt > clock.now() ? entry.user : undefined
    },

    /** Forgets a changed user here and on every other instance; call it after the change committed. */
    async invalidate(userId: string) {
      forget(userId)
      await bus?.publish(userId)
    },

    start: () => bus?.subscribe(forget, forgetAll),
    close: () => bus?.close(),
    size: () => entries.size,
  }
}

/**
 * The bus on Redis pub/sub; subscribing needs a connection of its own. On a cluster it is sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE): the channel lives on the master of its slot alone, where classic PUBLISH would be
 * relayed over the cluster bus to every node; the client follows the channel's slot to a promoted replica.
 */
export function redisInvalidationBus(client: RedisClient, channel: string): InvalidationBus {
  let subscriber: RedisClient | undefined
  return {
    async publish(userId) {
      // Best effort: a lost message is covered by the TTL, and must not fail the change that committed.
      await (isCluster(client) ? client.sPublish(channel, userId) : client.publish(channel, userId)).catch(() => {})
    },
    async subscribe(onMessage, onGap) {
      if (isCluster(client)) {
        // Only the connection to the channel's master: the subscriber sends no keyed commands.
        const cluster = client.duplicate({ minimizeConnections: true })
        subscriber = cluster
        cluster.on('error', () => {})
        cluster.on('node-error', () => {})
        // Any node connection of the subscriber that comes back may have missed messages meanwhile.
        let connected = false
        cluster.on('node-ready', () => {
          if (connected) onGap()
        })
        await cluster.connect()
        await cluster.sSubscribe(channel, onMessage)
        connected = true
        return
      }
      const standalone = client.duplicate()
      subscriber = standalone
      standalone.on('error', () => {})
      let connectedOnce = false
      standalone.on('ready', () => {
        if (connectedOnce) onGap()
        connectedOnce = true
      })
      await standalone.connect()
      await standalone.subscribe(channel, onMessage)
    },
    async close() {
      subscriber?.destroy()
    },
  }
}
