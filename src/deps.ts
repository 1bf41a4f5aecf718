import { createPasswords, type Passwords } from './users/passwords'
import { createTokens, type Tokens } from './sessions/tokens'
import { systemClock, type Clock } from './clock'
import { targetQueues, type Config, type ServiceConfig } from './config'
import { openPglite, openPostgres, type Database, type DbHandle } from './db'
import { createAmqpPublisher, type AmqpPublisherOptions, type Publisher } from './events/publisher'
import { createRelay, type Relay } from './events/relay'
import { brokerCheck, databaseCheck, evictionPolicy, outboxCheck, redisCheck, type ReadinessCheck } from './health/checks'
import type { Logger } from './logger'
import { createMailRelay, type MailRelay } from './mail/relay'
import { createMailMetrics, mailCheck } from './mail/observability'
import { createMailTransport, type MailTransport } from './mail/transport'
import { createMetrics, type Metrics } from './metrics'
import { recoveryLifecycle } from './recovery/service'
import { mfaGate } from './mfa/service'
import { createMemoryFlowStore, createRedisFlowStore, type FlowStore } from './oidc/flow-store'
import { createOidcProviders, type OidcProviders } from './oidc/providers'
import type { SecondFactorGate } from './auth/service'
import { createRequestTracker, type RequestTracker } from './http/request-tracker'
import { startSecurityLogRetention, type SecurityLogRetention } from './security-log/retention'
import { createMemoryRateLimiter } from './sessions/memory-rate-limiter'
import { createMemorySessionStore } from './sessions/memory-store'
import type { RateLimiter } from './sessions/rate-limiter'
import { masterClients, openRedis, type RedisClient } from './redis/client'
import { createRedisRateLimiter } from './sessions/redis-rate-limiter'
import { createRedisSessionStore } from './sessions/redis-store'
import type { SessionStore } from './sessions/store'
import { createFileStore, type FileStore } from './storage/files'
import { createUserCache, redisInvalidationBus, type UserCache } from './users/cache'
import type { UserLifecycle } from './users/service'

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
  relay: Relay
  mailRelay: MailRelay
  /** Recovery's part in user changes: verification messages, notices, voided tokens. */
  lifecycle: UserLifecycle
  /** The mfa feature's answer to a login after a right password: a step-up for accounts with a second factor. */
  secondFactor: SecondFactorGate
  /** OIDC_PROVIDERS, each discovered on first use. */
  oidcProviders: OidcProviders
  /** A provider sign-in's state and one-time codes (Redis, or in process). */
  oidcFlows: FlowStore
  files: FileStore
  metrics: Metrics
  userCache: UserCache
  requests: RequestTracker
  /** Prunes security events past SECURITY_LOG_RETENTION_DAYS. */
  securityLogRetention: SecurityLogRetention
  /** What GET /health/ready checks: one entry per configured backing service. */
  readiness: ReadinessCheck[]
}

/** The connections a Deps is built over; tests open their own. */
export type Connections = {
  database: DbHandle
  redis?: RedisClient
  /** Session and rate-limit stores; built on `redis` (or in process) when not given. */
  stores?: Stores
  publisher?: Publisher
  /** The picture store; the configured one when not given. */
  files?: FileStore
  /** Where mail goes; SMTP_URL, or .eml files under DATA_DIR/mail, when not given. */
  mail?: MailTransport
}

export type Stores = { sessions: SessionStore; limiter: RateLimiter; flows: FlowStore }

/** The one place that connects: Postgres (PGlite in DATA_DIR otherwise), Redis and RabbitMQ when configured. */
export async function createDeps(config: ServiceConfig, logger: Logger, clock: Clock = systemClock) {
  const database = await openDatabase(config, logger)
  const redis = await openRedis(config, logger)
  if (!redis) logger.info('neither REDIS_URL nor REDIS_CLUSTER_NODES is set: sessions and rate limits are kept in this process (one instance only)')
  else void warnIfEvicting(redis, logger)
  const publisher = config.amqpUrl ? createPublisher(config, config.amqpUrl, logger) : undefined
  const deps = await buildDeps(config, { database, redis, publisher }, logger, clock)
  return {
    deps,
    database,
    /** Flushes the outbox within the deadline, then closes every connection. */
    async close(deadlineMs: number) {
      await Promise.all([deps.relay.stop({ deadlineMs }), deps.mailRelay.stop({ deadlineMs })])
      deps.securityLogRetention.stop()
      await deps.userCache.close()
      await publisher?.close()
      await redis?.close().catch(() => {})
      await database.close()
    },
  }
}

// Once at start-up; /health/ready repeats it for whoever looks later.
async function warnIfEvicting(redis: RedisClient, logger: Logger) {
  const { maxmemory_policy, warning } = await evictionPolicy(await masterClients(redis).catch(() => []))
  if (warning) logger.warn({ maxmemory_policy }, warning)
}

/** Opens (and migrates) the configured database alone, for the commands that need nothing else. */
export const openDatabase = (config: Config, logger?: Logger): Promise<DbHandle> =>
  config.databaseUrl
    ? openPostgres(config.databaseUrl, { timeouts: config.databaseTimeouts, logger })
    : openPglite(`${config.dataDir}/pglite`)

/** The RabbitMQ publisher the configuration describes; it connects in the background and never blocks start-up. */
export function createPublisher(config: Config, url: string, logger: Logger, overrides: Partial<AmqpPublisherOptions> = {}): Publisher {
  return createAmqpPublisher({
    url,
    queues: targetQueues(config),
    exchange: config.eventsExchange,
    queueDurable: config.queueDurable,
    logger: logger.child({ component: 'amqp-publisher' }),
    ...overrides,
  })
}

/** The channel on which instances of one deployment announce changed users. */
export const userInvalidations = (redis: RedisClient, prefix: string) => redisInvalidationBus(redis, `${prefix}user-changed`)

/** Session, rate-limit and sign-in flow stores on Redis, or in process when there is none. */
export function stores(redis: RedisClient | undefined, prefix: string, clock: Clock): Stores {
  return redis
    ? {
        sessions: createRedisSessionStore({ client: redis, prefix }),
        limiter: createRedisRateLimiter({ client: redis, prefix, clock }),
        flows: createRedisFlowStore({ client: redis, prefix }),
      }
    : { sessions: createMemorySessionStore({ clock }), limiter: createMemoryRateLimiter({ clock }), flows: createMemoryFlowStore({ clock }) }
}

/** Deps over already open connections (tests use this with their own database, stores, publisher and clock). */
export async function buildDeps(config: ServiceConfig, connections: Connections, logger: Logger, clock: Clock): Promise<Deps> {
  const { database, redis, publisher } = connections
  const { sessions, limiter, flows } = connections.stores ?? stores(redis, config.redisKeyPrefix, clock)
  const tokens = await createTokens(
    {
      secret: config.secretKey,
      accessSeconds: config.accessTokenSeconds,
      refreshSeconds: config.refreshTokenSeconds,
      sessionMaxAgeSeconds: config.sessionMaxAgeSeconds,
      audience: config.jwtAudience,
      issuer: config.jwtIssuer,
      privateKeyPem: config.jwtPrivateKeyPem,
      previousPublicKeyPems: config.jwtPreviousPublicKeyPems,
    },
    clock,
  )
  const metrics = createMetrics()
  const relay = createRelay({
    database,
    publisher,
    logger,
    clock,
    options: config.outbox,
    onPublishFailure: (reason) => metrics.publishFailures.inc({ reason }),
  })
  metrics.watchOutbox(relay)
  const mailMetrics = createMailMetrics(metrics.registry)
  const mailRelay = createMailRelay({
    database,
    transport: connections.mail ?? createMailTransport(config, logger),
    logger,
    clock,
    from: config.mail.from,
    brand: config.mail,
    options: {
      sweepIntervalMs: config.outbox.sweepIntervalMs,
      maxAttempts: config.outbox.maxAttempts,
      retentionMs: config.outbox.retentionMs,
      backoff: { initialMs: Math.min(1_000, config.mail.retryMaxMs), maxMs: config.mail.retryMaxMs },
    },
    onSent: mailMetrics.onSent,
    onFailure: mailMetrics.onFailure,
  })
  mailMetrics.watch(mailRelay)
  const userCache = createUserCache({
    db: database.db,
    clock,
    ...config.userCache,
    bus: redis && userInvalidations(redis, config.redisKeyPrefix),
  })
  await userCache.start()
  return {
    config,
    db: database.db,
    clock,
    logger,
    passwords: createPasswords(config.argon2),
    tokens,
    sessions,
    limiter,
    relay,
    mailRelay,
    lifecycle: recoveryLifecycle({ clock, config }),
    secondFactor: mfaGate({ db: database.db, clock }),
    oidcProviders: createOidcProviders({ providers: config.oidc.providers, allowHttp: config.oidc.allowHttp, clock, logger }),
    oidcFlows: flows,
    files: connections.files ?? createFileStore(config),
    metrics,
    userCache,
    requests: createRequestTracker(),
    securityLogRetention: startSecurityLogRetention({ db: database.db, clock, logger, retentionDays: config.securityLogRetentionDays }),
    readiness: [
      databaseCheck(database),
      ...(redis ? [redisCheck(redis)] : []),
      ...(publisher ? [brokerCheck(publisher)] : []),
      outboxCheck(relay),
      mailCheck(mailRelay),
    ],
  }
}
