import { createPasswords, type Passwords } from './auth/passwords'
import { createTokens, type Tokens } from './auth/tokens'
import { systemClock, type Clock } from './clock'
import type { Config } from './config'
import { openPglite, openPostgres, type Database, type DbHandle } from './db'
import type { Logger } from './logger'
import { createMemoryRateLimiter } from './sessions/memory-rate-limiter'
import { createMemorySessionStore } from './sessions/memory-store'
import type { RateLimiter } from './sessions/rate-limiter'
import { connectRedis, type RedisClient } from './sessions/redis-client'
import { createRedisRateLimiter } from './sessions/redis-rate-limiter'
import { createRedisSessionStore } from './sessions/redis-store'
import type { SessionStore } from './sessions/store'

export type ServiceConfig = Config & { secretKey: string }

/** Everything that touches the outside world, built once and passed to createApp. */
export type Deps = {
  config: ServiceConfig
  db: Database
  clock: Clock
  logger: Logger
  passwords: Passwords
  tokens: Tokens
  sessions: SessionStore
  limiter: RateLimiter
}

export type Stores = { sessions: SessionStore; limiter: RateLimiter }

/** The one place that connects: Postgres when configured (PGlite in DATA_DIR otherwise), Redis when configured. */
export async function createDeps(config: ServiceConfig, logger: Logger, clock: Clock = systemClock) {
  const database = await openDatabase(config)
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined
  if (!redis) logger.info('REDIS_URL is not set: sessions and rate limits are kept in this process (one instance only)')
  const deps = await buildDeps(config, database.db, stores(redis, config.redisKeyPrefix, clock), logger, clock)
  return {
    deps,
    database,
    redis,
    async close() {
      await redis?.close().catch(() => {})
      await database.close()
    },
  }
}

/** Postgres when configured, the embedded PGlite in DATA_DIR otherwise; migrated either way. */
export const openDatabase = (config: Config): Promise<DbHandle> =>
  config.databaseUrl ? openPostgres(config.databaseUrl) : openPglite(`${config.dataDir}/pglite`)

/** Session and rate-limit stores on Redis, or in process when there is none. */
export function stores(redis: RedisClient | undefined, prefix: string, clock: Clock): Stores {
  return redis
    ? { sessions: createRedisSessionStore({ client: redis, prefix }), limiter: createRedisRateLimiter({ client: redis, prefix, clock }) }
    : { sessions: createMemorySessionStore({ clock }), limiter: createMemoryRateLimiter({ clock }) }
}

/** Deps over already open connections (tests use this with their own database, stores and clock). */
export async function buildDeps(config: ServiceConfig, db: Database, { sessions, limiter }: Stores, logger: Logger, clock: Clock): Promise<Deps> {
  const tokens = await createTokens(
    {
      secret: config.secretKey,
      accessSeconds: config.accessTokenSeconds,
      refreshSeconds: config.refreshTokenSeconds,
      audience: config.jwtAudience,
      issuer: config.jwtIssuer,
      privateKeyPem: config.jwtPrivateKeyPem,
      previousPublicKeyPems: config.jwtPreviousPublicKeyPems,
    },
    clock,
  )
  return { config, db, clock, logger, passwords: createPasswords(config.argon2), tokens, sessions, limiter }
}
