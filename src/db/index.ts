import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { sql, type SQL } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import * as schema from './schema'

/** Either driver, seen through Drizzle's common Postgres interface. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0]

/** The rows of a raw query, which postgres.js returns as an array and PGlite inside `{ rows }`. */
export async function queryRows<T>(db: Database | Transaction, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as T[] | { rows: T[] }
  return Array.isArray(result) ? result : result.rows
}

/** A single connection of its own, for work that must stay on one session (the relay's lock). */
export type DbSession = { db: Database; close(): Promise<void> }

export type DbHandle = {
  db: Database
  ping(): Promise<void>
  close(): Promise<void>
} & ({ driver: 'postgres'; openSession(): DbSession } | { driver: 'pglite' })

const migrationsFolder = join(import.meta.dir, '../../drizzle')
const casing = 'snake_case'
// Any constant works; it only has to be the same for every instance of this service.
const MIGRATION_LOCK_KEY = 0x75736572

/** Connects to a real Postgres and applies pending migrations, one instance at a time. */
export async function openPostgres(url: string, options: { max?: number } = {}): Promise<DbHandle> {
  await migrateWithLock(url)
  const client = postgres(url, { max: options.max ?? 10, onnotice: () => {} })
  const db = drizzlePostgres(client, { schema, casing }) as unknown as Database
  return {
    db,
    driver: 'postgres',
    ping: async () => void (await client`select 1`),
    close: () => client.end({ timeout: 5 }),
    openSession() {
      const session = postgres(url, { max: 1, onnotice: () => {} })
      // A short grace: whatever a closing session leaves uncommitted is simply done again later.
      return { db: drizzlePostgres(session, { schema, casing }) as unknown as Database, close: () => session.end({ timeout: 1 }) }
    },
  }
}

// A session-level advisory lock on a dedicated connection: instances starting
// together wait here, and the later ones find nothing left to apply.
async function migrateWithLock(url: string) {
  const client = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
    await migratePostgres(drizzlePostgres(client, { casing }), { migrationsFolder })
    await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`
  } finally {
    await client.end({ timeout: 5 })
  }
}

/** Opens the embedded PGlite database in `dataDir` (in memory when undefined) and applies pending migrations. */
export async function openPglite(dataDir?: string): Promise<DbHandle> {
  if (dataDir) mkdirSync(dataDir, { recursive: true })
  const client = await PGlite.create(dataDir)
  const db = drizzlePglite(client, { schema, casing })
  await migratePglite(db, { migrationsFolder })
  return {
    db: db as unknown as Database,
    driver: 'pglite',
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => client.close(),
  }
}
