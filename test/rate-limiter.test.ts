import { beforeEach, describe, expect, test } from 'bun:test'
import { randomUUID } from 'node:crypto'
import { manualClock } from '../src/clock'
import { createMemoryRateLimiter } from '../src/sessions/memory-rate-limiter'
import type { RateLimiter } from '../src/sessions/rate-limiter'
import { clientsOfEveryKind, REDIS_KINDS } from './support/redis'
import { createRedisRateLimiter } from '../src/sessions/redis-rate-limiter'

const prefix = `test:rate-limiter:${randomUUID()}:`
const rule = { limit: 3, windowSeconds: 10 }

// The machine's standalone Redis and the local cluster, each running every case below.
const clients = clientsOfEveryKind(prefix)

type Harness = { limiter: RateLimiter; clock: ReturnType<typeof manualClock> }

const harnesses: Array<[string, () => Harness]> = [
  [
    'memory',
    () => {
      const clock = manualClock()
      return { clock, limiter: createMemoryRateLimiter({ clock }) }
    },
  ],
  ...REDIS_KINDS.map((kind): [string, () => Harness] => [
    kind,
    () => {
      const clock = manualClock()
      return { clock, limiter: createRedisRateLimiter({ client: clients[kind], prefix, clock }) }
    },
  ]),
]

describe.each(harnesses)('%s rate limiter', (_name, make) => {
  let h: Harness
  let key: string
  beforeEach(() => {
    h = make()
    key = `login:account:${randomUUID()}`
  })

  const allowed = { allowed: true, retryAfterSeconds: 0 }

  const refused = (retryAfterSeconds: number) => ({ allowed: false, retryAfterSeconds })

  test('allows up to the limit, then refuses with a shrinking Retry-After until the window passes', async () => {
    for (let i = 0; i < rule.limit; i++) expect(await h.limiter.hit(key, rule)).toEqual(allowed)
    expect(await h.limiter.hit(key, rule)).toEqual(refused(10))
    h.clock.advance(4_000)
    expect(await h.limiter.hit(key, rule)).toEqual(refused(6))
    h.clock.advance(5_500)
    expect(await h.limiter.hit(key, rule)).toEqual(refused(1))
    h.clock.advance(500)
    for (let i = 0; i < rule.limit; i++) expect(await h.limiter.hit(key, rule)).toEqual(allowed)
    expect(await h.limiter.hit(key, rule)).toEqual(refused(10))
  })

  test('the window slides: each attempt frees its slot exactly one window later', async () => {
    for (let i = 0; i < rule.limit; i++) {
      expect(await h.limiter.hit(key, rule)).toEqual(allowed)
      h.clock.advance(2_000)
    }
    expect(await h.limiter.hit(key, rule)).toEqual(refused(4))
    h.clock.advance(4_000)
    expect(await h.limiter.hit(key, rule)).toEqual(allowed)
    expect(await h.limiter.hit(key, rule)).toEqual(refused(2))
  })

  test('refused hits do not extend the lockout', async () => {
    for (let i = 0; i < rule.limit; i++) await h.limiter.hit(key, rule)
    h.clock.advance(5_000)
    for (let i = 0; i < 5; i++) expect((await h.limiter.hit(key, rule)).allowed).toBe(false)
    h.clock.advance(5_000)
    expect(await h.limiter.hit(key, rule)).toEqual(allowed)
  })

  test('concurrent hits never exceed the limit', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => h.limiter.hit(key, rule)))
    expect(results.filter((r) => r.allowed)).toHaveLength(rule.limit)
  })

  test('a parallel burst over several limits counts exactly as many attempts as a sequence would', async () => {
    const pair = { key, rule }
    const address = { key: `login:ip:${randomUUID()}`, rule: { limit: 5, windowSeconds: 10 } }
    const results = await Promise.all(Array.from({ length: 50 }, () => h.limiter.hitAll([pair, address])))
    expect(results.filter((r) => r.allowed)).toHaveLength(rule.limit)
    expect(results.filter((r) => !r.allowed).every((r) => r.refusedBy === 0 && r.retryAfterSeconds === 10)).toBe(true)
    // Only the three counted attempts reached the address limit: two slots are left there.
    const other = { key: `login:pair:${randomUUID()}`, rule }
    expect((await h.limiter.hitAll([other, address])).allowed).toBe(true)
    expect((await h.limiter.hitAll([other, address])).allowed).toBe(true)
    expect(await h.limiter.hitAll([other, address])).toMatchObject({ allowed: false, refusedBy: 1 })
  })

  test('an attempt refused by one limit counts under none, and Retry-After waits for every full limit', async () => {
    const short = { key: `login:a:${randomUUID()}`, rule: { limit: 1, windowSeconds: 2 } }
    const long = { key: `login:b:${randomUUID()}`, rule: { limit: 1, windowSeconds: 10 } }
    expect((await h.limiter.hitAll([short])).allowed).toBe(true)
    expect(await h.limiter.hitAll([short, long])).toMatchObject({ allowed: false, refusedBy: 0, retryAfterSeconds: 2 })
    expect((await h.limiter.hitAll([long])).allowed).toBe(true)
    expect(await h.limiter.hitAll([short, long])).toMatchObject({ allowed: false, refusedBy: 1, retryAfterSeconds: 10 })
  })

  test('a limit enforced after another refuses only callers that already count under that one', async () => {
    const accountWide = { key: `login:account:${randomUUID()}`, rule, enforcedAfter: 0 }
    const fromA = { key: `login:pair-a:${randomUUID()}`, rule: { limit: 10, windowSeconds: 10 } }
    const fromB = { key: `login:pair-b:${randomUUID()}`, rule: { limit: 10, windowSeconds: 10 } }
    for (let i = 0; i < rule.limit; i++) expect((await h.limiter.hitAll([fromA, accountWide])).allowed).toBe(true)
    // A has failed for the account, which is full: A is stopped.
    expect(await h.limiter.hitAll([fromA, accountWide])).toMatchObject({ allowed: false, refusedBy: 1, retryAfterSeconds: 10 })
    // B has not: its first attempt goes through (and counts under B), the next one is stopped.
    expect((await h.limiter.hitAll([fromB, accountWide])).allowed).toBe(true)
    expect(await h.limiter.hitAll([fromB, accountWide])).toMatchObject({ allowed: false, refusedBy: 1 })
    // A parallel burst from a fresh address gets exactly one attempt.
    const fromC = { key: `login:pair-c:${randomUUID()}`, rule: { limit: 10, windowSeconds: 10 } }
    const burst = await Promise.all(Array.from({ length: 20 }, () => h.limiter.hitAll([fromC, accountWide])))
    expect(burst.filter((r) => r.allowed)).toHaveLength(1)
  })

  test('forgive takes back exactly one attempt, from the keys named', async () => {
    const other = { key: `login:ip:${randomUUID()}`, rule }
    const attempts = []
    for (let i = 0; i < rule.limit; i++) attempts.push(await h.limiter.hitAll([{ key, rule }, other]))
    expect((await h.limiter.hit(key, rule)).allowed).toBe(false)
    await h.limiter.forgive(attempts[1]!.id, [key])
    expect(await h.limiter.hit(key, rule)).toEqual(allowed)
    expect((await h.limiter.hit(key, rule)).allowed).toBe(false)
    expect((await h.limiter.hit(other.key, rule)).allowed).toBe(false)
  })

  test('reset frees the key and keys are independent', async () => {
    const other = `login:ip:${randomUUID()}`
    for (let i = 0; i < rule.limit; i++) await h.limiter.hit(key, rule)
    expect((await h.limiter.hit(key, rule)).allowed).toBe(false)
    expect(await h.limiter.hit(other, rule)).toEqual(allowed)
    await h.limiter.reset(key)
    expect(await h.limiter.hit(key, rule)).toEqual(allowed)
  })

  test('rejects rules that could never allow, an enforcedAfter that names no other limit, and an attempt over two families', async () => {
    await expect(h.limiter.hit(key, { limit: 0, windowSeconds: 10 })).rejects.toThrow(RangeError)
    await expect(h.limiter.hitAll([{ key, rule, enforcedAfter: 0 }])).rejects.toThrow(RangeError)
    // Every store refuses what a cluster could not count atomically, so the mistake shows before production.
    await expect(h.limiter.hitAll([{ key, rule }, { key: `mail:ip:${randomUUID()}`, rule }])).rejects.toThrow(RangeError)
  })
})

describe.each(REDIS_KINDS)('%s attempt logs', (kind) => {
  test('expire with the window, and one family shares a hash slot', async () => {
    const client = clients[kind]
    const key = `login:ip:${randomUUID()}`
    await createRedisRateLimiter({ client, prefix }).hitAll([{ key, rule }, { key: `login:account:${randomUUID()}`, rule }])
    const ttl = await client.pTTL(`${prefix}{rate:login}:${key}`)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(rule.windowSeconds * 1000)
  })
})
