import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test'
import { randomUUID } from 'node:crypto'
import { manualClock } from '../src/clock'
import { createMemoryRateLimiter } from '../src/sessions/memory-rate-limiter'
import type { RateLimiter } from '../src/sessions/rate-limiter'
import { connectRedis, type RedisClient } from '../src/sessions/redis-client'
import { createRedisRateLimiter } from '../src/sessions/redis-rate-limiter'

const prefix = `test:rate-limiter:${randomUUID()}:`
const rule = { limit: 3, windowSeconds: 10 }

let client: RedisClient

beforeAll(async () => {
  client = await connectRedis('redis://127.0.0.1:6379', { info() {}, warn() {} })
})

afterAll(async () => {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await client.del(keys)
  }
  await client.close()
})

type Harness = { limiter: RateLimiter; clock: ReturnType<typeof manualClock> }

const harnesses: Array<[string, () => Harness]> = [
  [
    'memory',
    () => {
      const clock = manualClock()
      return { clock, limiter: createMemoryRateLimiter({ clock }) }
    },
  ],
  [
    'redis',
    () => {
      const clock = manualClock()
      return { clock, limiter: createRedisRateLimiter({ client, prefix, clock }) }
    },
  ],
]

describe.each(harnesses)('%s rate limiter', (_name, make) => {
  let h: Harness
  let key: string
  beforeEach(() => {
    h = make()
    key = `login:account:${randomUUID()}`
  })

  const allowed = { allowed: true, retryAfterSeconds: 0 }

  test('allows up to the limit, then refuses with a shrinking Retry-After until the window passes', async () => {
    for (let i = 0; i < rule.limit; i++) expect(await h.limiter.hit(key, rule)).toEqual(allowed)
    expect(await h.limiter.hit(key, rule)).toEqual({ allowed: false, retryAfterSeconds: 10 })
    expect(await h.limiter.check(key, rule)).toEqual({ allowed: false, retryAfterSeconds: 10 })
    h.clock.advance(4_000)
    expect(await h.limiter.check(key, rule)).toEqual({ allowed: false, retryAfterSeconds: 6 })
    h.clock.advance(5_500)
    expect(await h.limiter.check(key, rule)).toEqual({ allowed: false, retryAfterSeconds: 1 })
    h.clock.advance(500)
    expect(await h.limiter.check(key, rule)).toEqual(allowed)
    for (let i = 0; i < rule.limit; i++) expect(await h.limiter.hit(key, rule)).toEqual(allowed)
  })

  test('the window slides: each attempt frees its slot exactly one window later', async () => {
    for (let i = 0; i < rule.limit; i++) {
      expect(await h.limiter.hit(key, rule)).toEqual(allowed)
      h.clock.advance(2_000)
    }
    expect(await h.limiter.check(key, rule)).toEqual({ allowed: false, retryAfterSeconds: 4 })
    h.clock.advance(4_000)
    expect(await h.limiter.hit(key, rule)).toEqual(allowed)
    expect(await h.limiter.hit(key, rule)).toEqual({ allowed: false, retryAfterSeconds: 2 })
  })

  test('check records nothing and refused hits do not extend the lockout', async () => {
    for (let i = 0; i < 10; i++) expect(await h.limiter.check(key, rule)).toEqual(allowed)
    for (let i = 0; i < rule.limit; i++) await h.limiter.hit(key, rule)
    h.clock.advance(5_000)
    for (let i = 0; i < 5; i++) expect((await h.limiter.hit(key, rule)).allowed).toBe(false)
    h.clock.advance(5_000)
    expect(await h.limiter.check(key, rule)).toEqual(allowed)
  })

  test('concurrent hits never exceed the limit', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => h.limiter.hit(key, rule)))
    expect(results.filter((r) => r.allowed)).toHaveLength(rule.limit)
  })

  test('reset frees the key and keys are independent', async () => {
    const other = `login:ip:${randomUUID()}`
    for (let i = 0; i < rule.limit; i++) await h.limiter.hit(key, rule)
    expect((await h.limiter.check(key, rule)).allowed).toBe(false)
    expect(await h.limiter.check(other, rule)).toEqual(allowed)
    await h.limiter.reset(key)
    expect(await h.limiter.check(key, rule)).toEqual(allowed)
  })

  test('rejects rules that could never allow', async () => {
    await expect(h.limiter.check(key, { limit: 0, windowSeconds: 10 })).rejects.toThrow(RangeError)
  })
})

test('redis attempt logs expire with the window', async () => {
  const key = `login:ip:${randomUUID()}`
  await createRedisRateLimiter({ client, prefix }).hit(key, rule)
  const ttl = await client.pTTL(`${prefix}rate:${key}`)
  expect(ttl).toBeGreaterThan(0)
  expect(ttl).toBeLessThanOrEqual(rule.windowSeconds * 1000)
})
