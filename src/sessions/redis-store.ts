import type { TokenPair } from './tokens'
import { commandDeadlines, REDIS_COMMAND_TIMEOUT_MS, withoutCommandTimeout, type RedisClient } from '../redis/client'
import { luaScript, redisCall, runScript } from './redis-scripts'
import {
  sanitizeMetadata,
  type CreateSessionInput,
  type RotateInput,
  type RotateResult,
  type SessionInfo,
  type SessionStore,
  StoreUnavailableError,
} from './store'

// Scripts touch keys derived from the session hash (the user's index, per-sid keys), which standalone Redis allows;
// running on Redis Cluster would need hash tags tying a user's keys to one slot.
const EXTEND_TTL = `
local function extendTtl(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
`

// Index members of ended sessions each create checks, at random: a bounded cost per login however many
// sessions a user has piled up (a script blocks Redis for every request), which still keeps the index
// near the live sessions; list and end-all prune it whole.
const PRUNE_SAMPLE = 16

// KEYS: session, index. ARGV: sessionPrefix, sid, userId, jti, ttl, now, ip, userAgent.
const CREATE = luaScript(`${EXTEND_TTL}
local ttl = tonumber(ARGV[5])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'userId', ARGV[3], 'jti', ARGV[4], 'createdAt', ARGV[6], 'lastUsedAt', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'ip', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'userAgent', ARGV[8]) end
redis.call('EXPIRE', KEYS[1], ttl)
for _, sid in ipairs(redis.call('SRANDMEMBER', KEYS[2], ${PRUNE_SAMPLE})) do
  if redis.call('EXISTS', ARGV[1] .. sid) == 0 then redis.call('SREM', KEYS[2], sid) end
end
redis.call('SADD', KEYS[2], ARGV[2])
extendTtl(KEYS[2], ttl)
`)

// KEYS: session, successor. ARGV: indexPrefix, sid, presentedJti, nextJti, pairJson, graceMs, ttl, now, maxAgeMs.
// Atomic so that of N concurrent rotations of one token exactly one mints the successor; the others get its pair.
// Re-adding the sid to the user's index means an evicted index heals, so "log out everywhere" cannot miss it for long.
// The absolute end is counted from createdAt, so a lowered SESSION_MAX_AGE applies to sessions already running.
const ROTATE = luaScript(`${EXTEND_TTL}
local s = redis.call('HMGET', KEYS[1], 'userId', 'jti', 'prevJti', 'rotatedAt', 'createdAt')
if not s[1] then return {'ended'} end
local graceMs, ttl, now = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local endsAt = tonumber(s[5]) + tonumber(ARGV[9])
if now >= endsAt then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', ARGV[1] .. s[1], ARGV[2])
  return {'ended'}
end
ttl = math.min(ttl, math.ceil((endsAt - now) / 1000))
if ARGV[3] == s[2] then
  redis.call('HSET', KEYS[1], 'jti', ARGV[4], 'prevJti', ARGV[3], 'rotatedAt', now, 'lastUsedAt', now)
  redis.call('EXPIRE', KEYS[1], ttl)
  if graceMs > 0 then redis.call('SET', KEYS[2], ARGV[5], 'PX', graceMs) else redis.call('DEL', KEYS[2]) end
  redis.call('SADD', ARGV[1] .. s[1], ARGV[2])
  extendTtl(ARGV[1] .. s[1], ttl)
  return {'rotated'}
end
if ARGV[3] == s[3] and now - tonumber(s[4]) <= graceMs then
  local pair = redis.call('GET', KEYS[2])
  if pair then return {'grace', pair} end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', ARGV[1] .. s[1], ARGV[2])
return {'reused'}
`)

// KEYS: session, successor. ARGV: indexPrefix, sid.
const END = luaScript(`
local userId = redis.call('HGET', KEYS[1], 'userId')
if not userId then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', ARGV[1] .. userId, ARGV[2])
return 1
`)

// KEYS: index. ARGV: sessionPrefix, exceptSid.
const END_ALL = luaScript(`
local ended = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if sid ~= ARGV[2] then
    ended = ended + redis.call('DEL', ARGV[1] .. sid)
    redis.call('DEL', ARGV[1] .. sid .. ':successor')
    redis.call('SREM', KEYS[1], sid)
  end
end
return ended
`)

// KEYS: index. ARGV: sessionPrefix. Prunes members whose session expired.
const LIST = luaScript(`
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HMGET', ARGV[1] .. sid, 'createdAt', 'lastUsedAt', 'ip', 'userAgent')
  if h[1] then
    table.insert(out, {sid, h[1], h[2], h[3] or '', h[4] or ''})
  else
    redis.call('SREM', KEYS[1], sid)
  end
end
return out
`)

/** Redis-backed {@link SessionStore}; every key lives under `prefix` and carries a TTL. */
export function createRedisSessionStore(options: { client: RedisClient; prefix: string }): SessionStore {
  const { client, prefix } = options
  const sessionPrefix = `${prefix}session:`
  const indexPrefix = `${prefix}user-sessions:`
  const sessionKey = (sid: string) => sessionPrefix + sid
  const successorKey = (sid: string) => `${sessionPrefix}${sid}:successor`
  const indexKey = (userId: string) => indexPrefix + userId
  // The session check runs on every authenticated request: bounded by one shared timer instead of one each.
  const untimed = withoutCommandTimeout(client)
  const deadlines = commandDeadlines(REDIS_COMMAND_TIMEOUT_MS)

  return {
    async create(input: CreateSessionInput) {
      const { ip, userAgent } = sanitizeMetadata(input.ip, input.userAgent)
      await runScript(
        client,
        CREATE,
        [sessionKey(input.sid), indexKey(input.userId)],
        [
          sessionPrefix,
          input.sid,
          input.userId,
          input.refreshJti,
          input.ttlSeconds,
          input.now,
          ip ?? '',
          userAgent ?? '',
        ],
      )
    },

    // Every authenticated request's one round trip: without redisCall's async wrapper or a timer of its own.
    isActive: (sid: string) =>
      deadlines.within(untimed.exists(sessionKey(sid))).then(
        (found) => found === 1,
        (err: unknown) => {
          throw new StoreUnavailableError(err)
        },
      ),

    async rotate(input: RotateInput) {
      // The successor pair is stored only so that racing requests presenting the just-rotated token receive the
      // winner's exact tokens instead of minting a second family branch. It is a live bearer credential, so it
      // lives in its own key that Redis drops once the grace period is over; if it is gone, grace is over by Redis'
      // clock too and the old token counts as reused.
      const reply = await runScript(
        client,
        ROTATE,
        [sessionKey(input.sid), successorKey(input.sid)],
        [
          indexPrefix,
          input.sid,
          input.presentedJti,
          input.next.refreshJti,
          JSON.stringify(input.next.pair),
          Math.round(input.graceSeconds * 1000),
          input.ttlSeconds,
          input.now,
          input.maxAgeSeconds * 1000,
        ],
      )
      return parseRotateReply(reply)
    },

    async end(sid: string) {
      const reply = await runScript(client, END, [sessionKey(sid), successorKey(sid)], [indexPrefix, sid])
      return reply === 1
    },

    async endAllForUser(userId: string, options?: { except?: string }) {
      const reply = await runScript(client, END_ALL, [indexKey(userId)], [sessionPrefix, options?.except ?? ''])
      return Number(reply)
    },

    async list(userId: string) {
      const reply = await runScript(client, LIST, [indexKey(userId)], [sessionPrefix])
      return (reply as unknown[][]).map(parseSessionRow).sort((a, b) => a.createdAt - b.createdAt)
    },

    async owner(sid: string) {
      return (await redisCall(() => client.hGet(sessionKey(sid), 'userId'))) ?? null
    },
  }
}

function parseRotateReply(reply: unknown): RotateResult {
  const [kind, pair] = reply as [RotateResult['kind'], string?]
  if (kind === 'grace') return { kind, pair: JSON.parse(pair ?? '') as TokenPair }
  return { kind }
}

function parseSessionRow(row: unknown[]): SessionInfo {
  const [sid = '', createdAt, lastUsedAt, ip, userAgent] = row.map(String)
  return {
    sid,
    createdAt: Number(createdAt),
    lastUsedAt: Number(lastUsedAt),
    ip: ip || null,
    userAgent: userAgent || null,
  }
}
