import { createPasswords, type Passwords } from './auth/passwords'
import { createTokens, type Tokens } from './auth/tokens'
import { systemClock, type Clock } from './clock'
import type { Config } from './config'
import { openPglite, openPostgres, type Database, type DbHandle } from './db'
import type { Logger } from './logger'

/** Everything that touches the outside world, built once and passed to createApp. */
export type Deps = {
  config: Config & { secretKey: string }
  db: Database
  clock: Clock
  logger: Logger
  passwords: Passwords
  tokens: Tokens
}

/** The one place that connects: Postgres when configured, PGlite in DATA_DIR otherwise. */
export async function createDeps(
  config: Config & { secretKey: string },
  logger: Logger,
  clock: Clock = systemClock,
): Promise<{ deps: Deps; database: DbHandle }> {
  const database = config.databaseUrl ? await openPostgres(config.databaseUrl) : await openPglite(`${config.dataDir}/pglite`)
  return { deps: buildDeps(config, database.db, logger, clock), database }
}

/** Deps over an already open database (tests use this with their own database and clock). */
export function buildDeps(config: Config & { secretKey: string }, db: Database, logger: Logger, clock: Clock): Deps {
  return {
    config,
    db,
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
  }
}
