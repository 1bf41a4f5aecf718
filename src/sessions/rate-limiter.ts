/** At most `limit` attempts in any sliding window of `windowSeconds`. */
export type RateRule = { limit: number; windowSeconds: number }

/** `retryAfterSeconds` is 0 when allowed, otherwise whole seconds until a slot frees (for Retry-After). */
export type RateDecision = { allowed: boolean; retryAfterSeconds: number }

/** One limit an attempt counts against. */
export type Limit = {
  key: string
  rule: RateRule
  /**
   * The index of another limit of the same attempt: this one refuses only when that one already holds
   * attempts, and otherwise just counts. It lets an account-wide limit stop the addresses that have failed
   * for the account while sparing one that has not (the owner's).
   */
  enforcedAfter?: number
}

/** A counted or refused attempt: `id` names it for {@link RateLimiter.forgive}; `refusedBy` is the index of the limit that refused. */
export type Attempt = RateDecision & { id: string; refusedBy?: number }

/**
 * Sliding-window limiter keyed by caller-chosen strings (e.g. `login:address:<ip>`). The limits of one attempt
 * share their family, the key's first segment (`login`): a Redis Cluster keeps one family in one slot so that
 * all of an attempt's keys can be counted in one atomic step.
 *
 * An attempt is counted before the work it guards, in one atomic step over all of its limits, so a burst of
 * parallel requests gets no more tries than the same requests one after another; work that turns out
 * harmless (a right password) is taken back afterwards with `forgive` or `reset`. There is deliberately no
 * "check, work, then count": parallel requests would all pass the check before any of them counted.
 *
 * The window is an exact log of attempt timestamps rather than the two-fixed-windows estimate: limits are
 * small, so the log costs at most `limit` entries per key, never lets a burst straddle a window boundary, and
 * yields an exact Retry-After (when the oldest attempt ages out).
 */
export interface RateLimiter {
  /**
   * Atomically counts one attempt under every limit, or, if any (enforced) limit is full, under none. A
   * limit that is full but not enforced for this attempt is left as it is, so no log outgrows its limit.
   */
  hitAll(limits: Limit[]): Promise<Attempt>
  /** `hitAll` with a single limit. */
  hit(key: string, rule: RateRule): Promise<RateDecision>
  /** Takes a counted attempt back from the given keys (e.g. a login whose password was right). */
  forgive(attemptId: string, keys: string[]): Promise<void>
  /** Forgets every attempt under `key`. */
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

/** A key's first segment, `login` of `login:account:<email>`: the keys of one attempt must share it. */
export const keyFamily = (key: string) => key.split(':', 1)[0]!

/** Checks the limits share one family and `enforcedAfter` points at another limit of the same attempt. */
export function checkLimits(limits: Limit[]) {
  if (limits.length === 0) throw new RangeError('an attempt needs at least one limit')
  const family = keyFamily(limits[0]!.key)
  limits.forEach(({ key, rule, enforcedAfter }, i) => {
    if (keyFamily(key) !== family) throw new RangeError(`limit ${i} (${key}) is not of the attempt's family ${family}`)
    windowMs(rule)
    if (enforcedAfter !== undefined && !(Number.isInteger(enforcedAfter) && enforcedAfter >= 0 && enforcedAfter < limits.length && enforcedAfter !== i))
      throw new RangeError(`invalid enforcedAfter ${enforcedAfter} for limit ${i}`)
  })
}
