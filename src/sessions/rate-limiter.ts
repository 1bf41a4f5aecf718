/** At most `limit` attempts in any sliding window of `windowSeconds`. */
export type RateRule = { limit: number; windowSeconds: number }

/** `retryAfterSeconds` is 0 when allowed, otherwise whole seconds until a slot frees (for Retry-After). */
export type RateDecision = { allowed: boolean; retryAfterSeconds: number }

/**
 * Sliding-window limiter keyed by caller-chosen strings (e.g. `login:account:<id>`, `login:ip:<addr>`).
 *
 * The window is an exact log of attempt timestamps rather than the two-fixed-windows estimate: login limits are
 * small (single or double digits), so the log costs at most `limit` entries per key, never lets a burst straddle a
 * window boundary, and yields an exact Retry-After (when the oldest attempt ages out).
 */
export interface RateLimiter {
  /** Whether an attempt would be allowed now; records nothing, so it can run before expensive work. */
  check(key: string, rule: RateRule): Promise<RateDecision>
  /** Atomically records an attempt if the window has room; a refused attempt is not recorded, keeping the log bounded. */
  hit(key: string, rule: RateRule): Promise<RateDecision>
  /** Forgets every attempt under `key` (e.g. after a successful login). */
  reset(key: string): Promise<void>
}

/** Window length in milliseconds; rejects rules that could never allow or never expire. */
export function windowMs(rule: RateRule): number {
  if (!(Number.isInteger(rule.limit) && rule.limit >= 1 && rule.windowSeconds > 0)) {
    throw new RangeError(`invalid rate rule ${JSON.stringify(rule)}`)
  }
  return Math.round(rule.windowSeconds * 1000)
}

/** Builds a decision from the milliseconds until a slot frees (0 or less means allowed). */
export function decision(waitMs: number): RateDecision {
  return waitMs > 0
    ? { allowed: false, retryAfterSeconds: Math.ceil(waitMs / 1000) }
    : { allowed: true, retryAfterSeconds: 0 }
}
