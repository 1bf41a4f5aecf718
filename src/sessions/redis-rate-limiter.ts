import { randomUUID } from 'node:crypto'
import { systemClock, type Clock } from '../clock'
import type { RedisClient } from '../redis/client'
import { luaScript, redisCall, runScript } from './redis-scripts'
import { checkLimits, decision, keyFamily, windowMs, type Limit, type RateLimiter } from './rate-limiter'

// KEYS: one attempts zset per limit. ARGV: now, member, then per limit: windowMs, limit, enforcedAfter (1-based, 0 = always).
// Returns {ms until the attempt would be allowed, 1-based index of the refusing limit}, {0, 0} when counted.
// One script, so the counts it reads are the counts it writes: parallel attempts cannot all see room.
const HIT_ALL = luaScript(`
local now, member = tonumber(ARGV[1]), ARGV[2]
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[3 * i]))
  counts[i] = redis.call('ZCARD', key)
end
local wait, refused = 0, 0
for i, key in ipairs(KEYS) do
  local window, limit, after = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if counts[i] >= limit and (after == 0 or counts[after] > 0) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local ms = tonumber(oldest[2]) + window - now
    if ms > wait then wait, refused = ms, i end
  end
end
if refused > 0 then return {wait, refused} end
for i, key in ipairs(KEYS) do
  if counts[i] < tonumber(ARGV[3 * i + 1]) then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, tonumber(ARGV[3 * i]))
  end
end
return {0, 0}
`)

/**
 * Redis-backed {@link RateLimiter}: one sorted set of attempt timestamps per key, TTL'd to the window. A key's
 * family (see {@link keyFamily}) is its hash tag, so the keys one script counts together share a slot on Redis
 * Cluster. A family is not spread further: its per-address and per-account keys are shared across attempts
 * (one address tries many accounts), so no finer tag could put every attempt's keys in one slot.
 */
export function createRedisRateLimiter(options: { client: RedisClient; prefix: string; clock?: Clock }): RateLimiter {
  const { client, prefix, clock = systemClock } = options
  const key = (name: string) => `${prefix}{rate:${keyFamily(name)}}:${name}`

  async function hitAll(limits: Limit[]) {
    checkLimits(limits)
    const id = randomUUID()
    const args = [clock.now(), id, ...limits.flatMap(({ rule, enforcedAfter }) => [windowMs(rule), rule.limit, enforcedAfter === undefined ? 0 : enforcedAfter + 1])]
    const [waitMs, refused] = (await runScript(client, HIT_ALL, limits.map((limit) => key(limit.key)), args)) as [number, number]
    return { ...decision(Number(waitMs)), id, ...(Number(refused) > 0 && { refusedBy: Number(refused) - 1 }) }
  }

  return {
    hitAll,
    async hit(name, rule) {
      const { allowed, retryAfterSeconds } = await hitAll([{ key: name, rule }])
      return { allowed, retryAfterSeconds }
    },
    async forgive(attemptId, names) {
      await Promise.all(names.map((name) => redisCall(() => client.zRem(key(name), attemptId))))
    },
    async reset(name) {
      await redisCall(() => client.del(key(name)))
    },
  }
}
