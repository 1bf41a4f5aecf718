import { mkdirSync } from 'node:fs'
import { sql, type SQL } from 'drizzle-orm'
import type { PgDatabase, PgDialect, PgQueryResultHKT, PgSession } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
// PGlite loads these from beside its own files, which a compiled binary does not have: imported as
// files, they are embedded by `bun build --compile` and handed to PGlite explicitly.
import initdbWasm from '../../node_modules/@electric-sql/pglite/dist/initdb.wasm' with { type: 'file' }
import pgliteData from '../../node_modules/@electric-sql/pglite/dist/pglite.data' with { type: 'file' }
import pgliteWasm from '../../node_modules/@electric-sql/pglite/dist/pglite.wasm' with { type: 'file' }
import { backoffDelay } from '../backoff'
import type { Logger } from '../logger'
import { guardAvailability } from './availability'
import { readMigrations } from './migrations'

export { DatabaseUnavailableError } from './availability'

/**
 * Either driver, seen through Drizzle's common Postgres interface. No schema is registered: queries name
 * the feature's own tables (users/table.ts, events/table.ts), so db/ depends on no feature.
 */
export type Database = PgDatabase<PgQueryResultHKT>
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0]

/** The rows of a raw query, which postgres.js returns as an array and PGlite inside `{ rows }`. */
export async function queryRows<T>(db: Database | Transaction, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as T[] | { rows: T[] }
  return Array.isArray(result) ? result : result.rows
}

/**
 * A query built once per database and then only executed: on the hot paths, building a Drizzle query
 * costs more CPU than the database spends running it.
 */
export function preparedPerDatabase<Prepared>(build: (db: Database) => Prepared): (db: Database) => Prepared {
  const prepared = new WeakMap<Database, Prepared>()
  return (db) => {
    let query = prepared.get(db)
    if (query === undefined) prepared.set(db, (query = build(db)))
    return query
  }
}

/** A single connection of its own, for work that must stay on one session (the relay's lock). */
export type DbSession = { db: Database; close(): Promise<void> }

export type DbHandle = {
  db: Database
  ping(): Promise<void>
  /** False while the database is known to be unreachable (requests then answer 503 at once). */
  isUp?(): boolean
  close(): Promise<void>
} & ({ driver: 'postgres'; openSession(): DbSession } | { driver: 'pglite' })

const casing = 'snake_case'
const RECONNECT_BACKOFF = { initialMs: 50, maxMs: 1_000 }
// Any constant works; it only has to be the same for every instance of this service.
const MIGRATION_LOCK_KEY = 0x75736572

/** How long the database may keep a caller waiting; see DATABASE_CONNECT_TIMEOUT and DATABASE_STATEMENT_TIMEOUT. */
export type DatabaseTimeouts = { connectTimeoutSeconds: number; statementTimeoutSeconds: number }

export const DEFAULT_DATABASE_TIMEOUTS: DatabaseTimeouts = { connectTimeoutSeconds: 2, statementTimeoutSeconds: 5 }

// While the database is down only the availability probe reconnects, so a short interval costs little.
const PROBE_INTERVAL_MS = 250

/** postgres.js settings shared by the pool and the relay's session. */
function clientOptions(max: number, timeouts: DatabaseTimeouts) {
  return {
    max,
    onnotice: () => {},
    // postgres.js waits 30 s by default, and backs off up to 20 s between attempts: a request waited as long.
    connect_timeout: timeouts.connectTimeoutSeconds,
    backoff: (retries: number) => backoffDelay(retries, RECONNECT_BACKOFF) / 1000,
    connection: { statement_timeout: timeouts.statementTimeoutSeconds * 1000 },
  }
}

/** Connects to a real Postgres and applies pending migrations, one instance at a time. */
export async function openPostgres(
  url: string,
  options: { max?: number; timeouts?: DatabaseTimeouts; logger?: Pick<Logger, 'warn' | 'info'> } = {},
): Promise<DbHandle> {
  const timeouts = options.timeouts ?? DEFAULT_DATABASE_TIMEOUTS
  await migrateWithLock(url, timeouts)
  const { client, availability } = guardAvailability(postgres(url, clientOptions(options.max ?? 10, timeouts)), {
    // Connecting and running one statement, and a little for the network: past that the caller gets a 503.
    queryTimeoutMs: (timeouts.connectTimeoutSeconds + timeouts.statementTimeoutSeconds) * 1000 + 500,
    probeIntervalMs: PROBE_INTERVAL_MS,
    onDown: (err) => options.logger?.warn({ err }, 'database unreachable: requests answer 503 until it is back'),
    onUp: () => options.logger?.info('database reachable again'),
  })
  const db = drizzlePostgres(client, { casing }) as unknown as Database
  return {
    db,
    driver: 'postgres',
    ping: async () => void (await client.unsafe('select 1')),
    isUp: availability.isUp,
    close: () => client.end({ timeout: 5 }),
    openSession() {
      const session = postgres(url, clientOptions(1, timeouts))
      // A short grace: whatever a closing session leaves uncommitted is simply done again later.
      return { db: drizzlePostgres(session, { casing }) as unknown as Database, close: () => session.end({ timeout: 1 }) }
    },
  }
}

// A session-level advisory lock on a dedicated connection: instances starting
// together wait here, and the later ones find nothing left to apply.
async function migrateWithLock(url: string, timeouts: DatabaseTimeouts) {
  const client = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: timeouts.connectTimeoutSeconds })
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
    await migrate(drizzlePostgres(client, { casing }))
    await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`
  } finally {
    await client.end({ timeout: 5 })
  }
}

/** Opens the embedded PGlite database in `dataDir` (in memory when undefined) and applies pending migrations. */
export async function openPglite(dataDir?: string): Promise<DbHandle> {
  if (dataDir) mkdirSync(dataDir, { recursive: true })
  const [pgliteWasmModule, initdbWasmModule] = await Promise.all(
    [pgliteWasm, initdbWasm].map(async (path) => WebAssembly.compile(await Bun.file(path).arrayBuffer())),
  )
  // Loaded only for the embedded default: a service on Postgres keeps its memory for requests.
  const [{ PGlite }, { drizzle: drizzlePglite }] = await Promise.all([import('@electric-sql/pglite'), import('drizzle-orm/pglite')])
  const client = await PGlite.create({ dataDir, pgliteWasmModule, initdbWasmModule, fsBundle: Bun.file(pgliteData) })
  const db = drizzlePglite(client, { casing })
  await migrate(db)
  return {
    db: db as unknown as Database,
    driver: 'pglite',
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => client.close(),
  }
}

// Drizzle's migrator, fed from readMigrations() instead of a folder on disk.
async function migrate(db: unknown) {
  const { dialect, session } = db as { dialect: PgDialect; session: PgSession }
  await dialect.migrate(await readMigrations(), session, 'drizzle')
}
