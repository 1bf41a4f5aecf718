import { createPasswords, type Passwords } from './auth/passwords'
import { createTokens, type Tokens } from './auth/tokens'
import { systemClock, type Clock } from './clock'
import { targetQueues, type Config } from './config'
import { openPglite, openPostgres, type Database, type DbHandle } from './db'
import { createAmqpPublisher, type AmqpPublisherOptions, type Publisher } from './events/publisher'
import { createRelay, type Relay } from './events/relay'
import { brokerCheck, databaseCheck, outboxCheck, type ReadinessCheck } from './health/checks'
import type { Logger } from './logger'

/** Everything that touches the outside world, built once and passed to createApp. */
export type Deps = {
  config: Config & { secretKey: string }
  db: Database
  clock: Clock
  logger: Logger
  passwords: Passwords
  tokens: Tokens
  relay: Relay
  /** What GET /health/ready checks: one entry per configured backing service. */
  readiness: ReadinessCheck[]
}

/** The one place that connects: Postgres when configured, PGlite in DATA_DIR otherwise; RabbitMQ when configured. */
export async function createDeps(
  config: Config & { secretKey: string },
  logger: Logger,
  clock: Clock = systemClock,
): Promise<{ deps: Deps; database: DbHandle; publisher: Publisher | undefined }> {
  const database = await openDatabase(config)
  const publisher = config.amqpUrl ? createPublisher(config, config.amqpUrl, logger) : undefined
  return { deps: buildDeps(config, database, logger, clock, publisher), database, publisher }
}

/** Opens (and migrates) the configured database alone, for the commands that need nothing else. */
export const openDatabase = (config: Config): Promise<DbHandle> =>
  config.databaseUrl ? openPostgres(config.databaseUrl) : openPglite(`${config.dataDir}/pglite`)

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

/** Deps over an already open database and publisher (tests use this with their own database, clock and publisher). */
export function buildDeps(
  config: Config & { secretKey: string },
  database: DbHandle,
  logger: Logger,
  clock: Clock,
  publisher?: Publisher,
): Deps {
  const relay = createRelay({ database, publisher, logger, clock, options: config.outbox })
  return {
    config,
    db: database.db,
    clock,
    logger,
    passwords: createPasswords(config.argon2),
    tokens: createTokens(
      {
        secret: config.secretKey,
        accessSeconds: config.accessTokenSeconds,
        refreshSeconds: config.refreshTokenSeconds,
        audience: config.jwtAudience,
        issuer: config.jwtIssuer,
      },
      clock,
    ),
    relay,
    readiness: [databaseCheck(database), ...(publisher ? [brokerCheck(publisher)] : []), outboxCheck(relay)],
  }
}
