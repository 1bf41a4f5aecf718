import { asc, sql, type SQL } from 'drizzle-orm'
import { preparedPerDatabase, type Database } from '../db'
import { countUpTo, pageSlice } from '../db/pages'
import { fieldError } from '../errors'
import type { Config } from '../config'
import { isUuid } from '../http/formats'
import type { FileStore } from '../storage/files'
import { USER_ERRORS } from './errors'
import { toUserBody } from './model'
import { users, type UserRow } from './table'

export const MAX_IDS = 100
// Counting a search stops here (see countUpTo): a broad one ("a") would read every match.
export const MAX_COUNT = 10_000

/** What the directory is asked for: some users by id, or a search by name, one page at a time. */
export type DirectoryQuery = { ids?: string; search?: string; page?: number; page_size?: number }


/** Name regardless of case, then id: the expressions of the users_full_name_order index (table.ts). */
export const directoryOrder = [asc(sql`lower(${users.fullName})`), asc(users.id)]

// Must stay the indexed expression of users_full_name_search (table.ts).
const searchVector = sql`to_tsvector('simple', ${users.fullName})`

/** The directory's query as the API takes it: strings, already checked by the route's schema. */
export type DirectoryParams = { ids?: string; search?: string; page?: string; page_size?: string }

/** DRF's page of public profiles, with absolute links to its neighbours; emails only for an admin `viewer`. */
export async function directoryPage(
  deps: { db: Database; files: Pick<FileStore, 'url'>; config: Pick<Config, 'publicUrl'> },
  viewer: UserRow,
  params: DirectoryParams,
) {
  const { count, page, hasNext, rows } = await listUsers(deps.db, {
    ids: params.ids,
    search: params.search,
    page: params.page === undefined ? undefined : Number(params.page),
    page_size: params.page_size === undefined ? undefined : Number(params.page_size),
  })
  const link = (to: number) => pageLink(deps.config.publicUrl, params, to)
  return {
    count,
    next: hasNext ? link(page + 1) : null,
    previous: page > 1 ? link(page - 1) : null,
    results: rows.map((row) => toUserBody(row, viewer.isAdmin, deps.files)),
  }
}

function pageLink(publicUrl: string, params: DirectoryParams, page: number) {
  const url = new URL(`${publicUrl}/api/users/`)
  for (const [key, value] of Object.entries(params)) if (value !== undefined && key !== 'page') url.searchParams.set(key, value)
  url.searchParams.set('page', String(page))
  return url.toString()
}

/**
 * One page of users, ordered by name then id. With `ids` every requested user comes in one page
 * (other services hydrate authors in one call); otherwise pages of `page_size` (10 by default), and
 * a page past the last is a 404, as DRF answers.
 */
export async function listUsers(db: Database, query: DirectoryQuery, maxCount = MAX_COUNT) {
  if (query.ids !== undefined) {
    // The hot path of other services (hydrating authors): one query, and the count is what came back.
    const rows = await usersByIds(db).execute({ ids: parseIds(query.ids) })
    return { count: rows.length, page: 1, hasNext: false, rows }
  }
  const pageSize = query.page_size ?? 10
  const page = query.page ?? 1
  const where = searchCondition(query.search)

  const found = await countUpTo(db, users, where, maxCount)
  const slice = pageSlice(found, page, pageSize)
  if (!slice) throw USER_ERRORS.pageNotFound()
  const rows = await db.select().from(users).where(where).orderBy(...directoryOrder).limit(pageSize).offset(slice.offset)
  return { count: found, page, hasNext: slice.hasNext, rows }
}

const usersByIds = preparedPerDatabase((db) =>
  db
    .select()
    .from(users)
    .where(sql`${users.id} = any(${sql.placeholder('ids')}::uuid[])`)
    .orderBy(...directoryOrder)
    .prepare('users_by_ids'),
)

function parseIds(value: string) {
  const ids = value.split(',').map((id) => id.trim()).filter(Boolean)
  if (ids.length > MAX_IDS) throw fieldError('ids', `Ensure this field has no more than ${MAX_IDS} ids.`)
  const invalid = ids.find((id) => !isUuid(id))
  if (invalid !== undefined) throw fieldError('ids', `“${invalid.slice(0, 64)}” is not a valid UUID.`)
  return [...new Set(ids.map((id) => id.toLowerCase()))]
}

/** The search as a condition on the indexed name vector. */
// Each word of the search becomes a prefix term; only letters and digits reach the query, so no
// tsquery syntax can be injected. A search with no word at all matches no one.
export function searchCondition(search: string | undefined): SQL | undefined {
  if (search === undefined) return undefined
  const words = (search.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 8)
  if (words.length === 0) return sql`false`
  return sql`${searchVector} @@ to_tsquery('simple', ${words.map((word) => `${word}:*`).join(' & ')})`
}
