import type { Clock } from '../clock'
import { decision, windowMs, type RateLimiter, type RateRule } from './rate-limiter'

type Log = { windowMs: number; stamps: number[] }

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
      if (log.stamps.every((t) => t <= now - log.windowMs)) logs.delete(key)
    }
  }

  function attempt(key: string, rule: RateRule, record: boolean) {
    const now = clock.now()
    const ms = windowMs(rule)
    sweepIfDue(now)
    const log = logs.get(key) ?? { windowMs: ms, stamps: [] }
    log.windowMs = ms
    log.stamps = log.stamps.filter((t) => t > now - ms)
    if (log.stamps.length >= rule.limit) return decision(Math.min(...log.stamps) + ms - now)
    if (record) {
      log.stamps.push(now)
      logs.set(key, log)
    }
    return decision(0)
  }

  return {
    check: async (key, rule) => attempt(key, rule, false),
    hit: async (key, rule) => attempt(key, rule, true),
    async reset(key) {
      logs.delete(key)
    },
  }
}
