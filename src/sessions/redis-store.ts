import type { TokenPair } from './tokens'
import { commandDeadlines, isCluster, REDIS_COMMAND_TIMEOUT_MS, withoutCommandTimeout, type RedisClient } from '../redis/client'
import { luaScript, runScript } from './redis-scripts'
import {
  sanitizeMetadata,
  type CreateSessionInput,
  type RotateInput,
  type RotateResult,
  type SessionInfo,
  type SessionStore,
  StoreUnavailableError,
} from './store'

// On Redis Cluster every key of a user's sessions carries the user id as its hash tag (`<prefix>{<userId>}:…`),
// so the user's index and each session's keys share one slot: a script may touch them together. The scripts
// that walk the index reach per-session keys not listed in KEYS; the cluster serves them because they hash to
// the slot of the keys that are. Every token carries the user id, so each call can name the user's keys.
// A single Redis keeps the names earlier releases used, so upgrading it keeps every live session.
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

// KEYS: session, successor, index. ARGV: sid, presentedJti, nextJti, pairJson, graceMs, ttl, now, maxAgeMs.
// Atomic so that of N concurrent rotations of one token exactly one mints the successor; the others get its pair.
// Re-adding the sid to the user's index means an evicted index heals, so "log out everywhere" cannot miss it for long.
// The absolute end is counted from createdAt, so a lowered SESSION_MAX_AGE applies to sessions already running.
const ROTATE = luaScript(`${EXTEND_TTL}
local s = redis.call('HMGET', KEYS[1], 'jti', 'prevJti', 'rotatedAt', 'createdAt')
if not s[1] then return {'ended'} end
local graceMs, ttl, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local endsAt = tonumber(s[4]) + tonumber(ARGV[8])
if now >= endsAt then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[1])
  return {'ended'}
end
ttl = math.min(ttl, math.ceil((endsAt - now) / 1000))
if ARGV[2] == s[1] then
  redis.call('HSET', KEYS[1], 'jti', ARGV[3], 'prevJti', ARGV[2], 'rotatedAt', now, 'lastUsedAt', now)
  redis.call('EXPIRE', KEYS[1], ttl)
  if graceMs > 0 then redis.call('SET', KEYS[2], ARGV[4], 'PX', graceMs) else redis.call('DEL', KEYS[2]) end
  redis.call('SADD', KEYS[3], ARGV[1])
  extendTtl(KEYS[3], ttl)
  return {'rotated'}
end
if ARGV[2] == s[2] and now - tonumber(s[3]) <= graceMs then
  local pair = redis.call('GET', KEYS[2])
  if pair then return {'grace', pair} end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return {'reused'}
`)

// KEYS: session, successor, index. ARGV: sid, userId. Another user's session is not found (a single Redis's
// session key does not name its user).
const END = luaScript(`
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
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

/** The names of a user's session keys: hash-tagged by the user on a cluster, the earlier names on a single Redis. */
export function sessionKeys(prefix: string, hashTagged: boolean) {
  const sessionPrefix = (userId: string) => (hashTagged ? `${prefix}{${userId}}:session:` : `${prefix}session:`)
  const sessionKey = (userId: string, sid: string) => sessionPrefix(userId) + sid
  return {
    sessionPrefix,
    sessionKey,
    successorKey: (userId: string, sid: string) => `${sessionKey(userId, sid)}:successor`,
    indexKey: (userId: string) => (hashTagged ? `${prefix}{${userId}}:sessions` : `${prefix}user-sessions:${userId}`),
  }
}

/**
 * Redis-backed {@link SessionStore}; every key lives under `prefix` and carries a TTL; on a cluster one user's keys
 * share a hash slot (see above).
 */
export function createRedisSessionStore(options: { client: RedisClient; prefix: string }): SessionStore {
  const { client, prefix } = options
  const { sessionPrefix, sessionKey, successorKey, indexKey } = sessionKeys(prefix, isCluster(client))
  // The session check runs on every authenticated request: bounded by one shared timer instead of one each.
  const untimed = withoutCommandTimeout(client)
  const deadlines = commandDeadlines(REDIS_COMMAND_TIMEOUT_MS)

  return {
    async create(input: CreateSessionInput) {
      const { ip, userAgent } = sanitizeMetadata(input.ip, input.userAgent)
      await runScript(
        client,
        CREATE,
        [sessionKey(input.userId, input.sid), indexKey(input.userId)],
        [
          sessionPrefix(input.userId),
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
    // Whose the session is, not only that it exists: on a single Redis the key does not name its user.
    isActive: (userId: string, sid: string) =>
      deadlines.within(untimed.hGet(sessionKey(userId, sid), 'userId')).then(
        (owner) => owner === userId,
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
        [sessionKey(input.userId, input.sid), successorKey(input.userId, input.sid), indexKey(input.userId)],
        [
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

    async end(userId: string, sid: string) {
      const reply = await runScript(client, END, [sessionKey(userId, sid), successorKey(userId, sid), indexKey(userId)], [sid, userId])
      return reply === 1
    },

    async endAllForUser(userId: string, options?: { except?: string }) {
      const reply = await runScript(client, END_ALL, [indexKey(userId)], [sessionPrefix(userId), options?.except ?? ''])
      return Number(reply)
    },

    async list(userId: string) {
      const reply = await runScript(client, LIST, [indexKey(userId)], [sessionPrefix(userId)])
      return (reply as unknown[][]).map(parseSessionRow).sort((a, b) => a.createdAt - b.createdAt)
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
