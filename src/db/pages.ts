import { count, sql, type SQL } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import type { Database } from './index'

/**
 * How many rows of `table` match `where`, counting no further than `max`: an exact count of a broad match
 * reads every matching row (a second at a million users); past `max`, a page's `count` means "at least".
 */
export async function countUpTo(db: Database, table: PgTable, where: SQL | undefined, max: number): Promise<number> {
  const matches = db.select({ one: sql`1` }).from(table).where(where).limit(max).as('matches')
  const [total] = await db.select({ n: count() }).from(matches)
  return total?.n ?? 0
}

/** Where page `page` of `found` rows starts and whether another follows; undefined when it lies past the end. */
export function pageSlice(found: number, page: number, pageSize: number) {
  if (page > 1 && (page - 1) * pageSize >= found) return undefined
  return { offset: (page - 1) * pageSize, hasNext: page * pageSize < found }
}
