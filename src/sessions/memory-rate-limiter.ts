import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock'
import { checkLimits, decision, windowMs, type Attempt, type Limit, type RateLimiter } from './rate-limiter'

type Log = { windowMs: number; attempts: { at: number; id: string }[] }

const SWEEP_INTERVAL_MS = 60_000

/** In-process {@link RateLimiter} for a single instance; time comes from the injected clock. */
export function createMemoryRateLimiter(options: { clock: Clock }): RateLimiter {
  const { clock } = options
  const logs = new Map<string, Log>()
  let lastSweep = clock.now()

  // Keys are per address and per account, so idle ones must be dropped or memory grows with every visitor.
  function sweepIfDue(now: number) {
    if (now - lastSweep < SWEEP_INTERVAL_MS) return
    lastSweep = now
    for (const [key, log] of logs) {
      if (log.attempts.every((a) => a.at <= now - log.windowMs)) logs.delete(key)
    }
  }

  function current(key: string, ms: number, now: number): Log {
    const log = logs.get(key) ?? { windowMs: ms, attempts: [] }
    log.windowMs = ms
    log.attempts = log.attempts.filter((a) => a.at > now - ms)
    return log
  }

  // Synchronous from the first read to the last write: atomic with respect to every other call.
  function hitAll(limits: Limit[]): Attempt {
    checkLimits(limits)
    const now = clock.now()
    const id = randomUUID()
    sweepIfDue(now)
    const held = limits.map(({ key, rule }) => current(key, windowMs(rule), now))
    let waitMs = 0
    let refusedBy: number | undefined
    limits.forEach(({ rule, enforcedAfter }, i) => {
      const log = held[i]!
      const enforced = enforcedAfter === undefined || held[enforcedAfter]!.attempts.length > 0
      if (!enforced || log.attempts.length < rule.limit) return
      const wait = Math.min(...log.attempts.map((a) => a.at)) + log.windowMs - now
      if (wait > waitMs) [waitMs, refusedBy] = [wait, i]
    })
    if (refusedBy !== undefined) return { ...decision(waitMs), id, refusedBy }
    limits.forEach(({ key, rule }, i) => {
      const log = held[i]!
      if (log.attempts.length >= rule.limit) return
      log.attempts.push({ at: now, id })
      logs.set(key, log)
    })
    return { ...decision(0), id }
  }

  return {
    hitAll: async (limits) => hitAll(limits),
    async hit(key, rule) {
      const { allowed, retryAfterSeconds } = hitAll([{ key, rule }])
      return { allowed, retryAfterSeconds }
    },
    async forgive(attemptId, keys) {
      for (const key of keys) {
        const log = logs.get(key)
        if (log) log.attempts = log.attempts.filter((a) => a.id !== attemptId)
      }
    },
    async reset(key) {
      logs.delete(key)
    },
  }
}
