import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { MigrationMeta } from 'drizzle-orm/migrator'
import journal from '../../drizzle/meta/_journal.json'

/**
 * The migrations drizzle-kit generated, in Drizzle's own form. In the compiled binary the SQL files
 * are embedded (`bun run build` passes them as assets under their own names); from source they are
 * read from drizzle/. The journal is imported, so it is part of the bundle either way.
 */
export async function readMigrations(): Promise<MigrationMeta[]> {
  return Promise.all(
    journal.entries.map(async (entry) => {
      const query = await migrationSql(entry.tag)
      return {
        sql: query.split('--> statement-breakpoint'),
        bps: entry.breakpoints,
        folderMillis: entry.when,
        // The same hash drizzle's own reader computes, so either reader sees the same applied set.
        hash: createHash('sha256').update(query).digest('hex'),
      }
    }),
  )
}

function migrationSql(tag: string) {
  const embedded = Bun.embeddedFiles.find((file) => (file as Blob & { name: string }).name === `${tag}.sql`)
  return (embedded ?? Bun.file(join(import.meta.dir, '../../drizzle', `${tag}.sql`))).text()
}
