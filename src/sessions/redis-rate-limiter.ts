import { randomUUID } from 'node:crypto'
import { systemClock, type Clock } from '../clock'
import { luaScript, redisCall, runScript, type RedisClient } from './redis-client'
import { decision, windowMs, type RateLimiter, type RateRule } from './rate-limiter'

// KEYS: attempts zset. ARGV: now, windowMs, limit, record ('1' or '0'), member. Returns ms until a slot frees, 0 if allowed.
const ATTEMPT = luaScript(`
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[5])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
`)

/** Redis-backed {@link RateLimiter}: one sorted set of attempt timestamps per key, TTL'd to the window. */
export function createRedisRateLimiter(options: { client: RedisClient; prefix: string; clock?: Clock }): RateLimiter {
  const { client, prefix, clock = systemClock } = options
  const key = (name: string) => `${prefix}rate:${name}`

  async function attempt(name: string, rule: RateRule, record: boolean) {
    const args = [clock.now(), windowMs(rule), rule.limit, record ? '1' : '0', randomUUID()]
    return decision(Number(await runScript(client, ATTEMPT, [key(name)], args)))
  }

  return {
    check: (name, rule) => attempt(name, rule, false),
    hit: (name, rule) => attempt(name, rule, true),
    async reset(name) {
      await redisCall(() => client.del(key(name)))
    },
  }
}
