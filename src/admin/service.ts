import { asc, eq, or, sql, type SQL } from 'drizzle-orm'
import type { Clock } from '../clock'
import type { Database } from '../db'
import { countUpTo, pageSlice } from '../db/pages'
import { recordUserEvent } from '../users/events'
import type { Metrics } from '../metrics'
import { recordSecurityEvent, recordSecurityEventAfter, type Actor, type ClientInfo } from '../security-log/service'
import type { SessionStore } from '../sessions/store'
import type { FileStore } from '../storage/files'
import type { UserCache } from '../users/cache'
import { searchCondition } from '../users/directory'
import { findUserById } from '../users/lookup'
import { users } from '../users/table'
import { ADMIN_ERRORS } from './errors'

export type AdminDeps = {
  db: Database
  clock: Clock
  files: Pick<FileStore, 'url'>
  sessions: Pick<SessionStore, 'endAllForUser'>
  userCache: Pick<UserCache, 'invalidate'>
  metrics: Pick<Metrics, 'sessionsEnded'>
  logger: { error(obj: object, msg: string): void }
}

/** The admin acting, and from where: every admin action is a security event with the admin as actor. */
export type AdminContext = { adminId: string; client: ClientInfo }

const asAdmin = (context: AdminContext): Actor => ({ kind: 'admin', id: context.adminId })

// As the directory's: past this many matches `count` means "at least".
const MAX_COUNT = 10_000
const PAGE_SIZE = 20

/**
 * One page of accounts, by email. `search` matches anywhere in the email (an operator pastes a whole
 * address, or a domain) or the start of any word of the name (the directory's indexed search). The email
 * part cannot use an index: acceptable for an operator's occasional query, not for a public route.
 */
export async function listAccounts(db: Database, query: { search?: string; page?: number; pageSize?: number }) {
  const pageSize = query.pageSize ?? PAGE_SIZE
  const page = query.page ?? 1
  let where: SQL | undefined
  if (query.search !== undefined && query.search.trim() !== '') {
    const pattern = `%${query.search.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    where = or(sql`${users.email} like ${pattern}`, searchCondition(query.search))
  }
  const found = await countUpTo(db, users, where, MAX_COUNT)
  const slice = pageSlice(found, page, pageSize)
  if (!slice) throw ADMIN_ERRORS.pageNotFound()
  const rows = await db.select().from(users).where(where).orderBy(asc(users.email)).limit(pageSize).offset(slice.offset)
  return { count: found, page, hasNext: slice.hasNext, rows }
}

/**
 * Disables an account: its state, the user.updated event and the `account_disabled` security event (with
 * the admin's reason) commit together; then every instance forgets the cached row and every session ends
 * in the shared session store, so its tokens stop working everywhere at once. Its login then answers as
 * wrong credentials do. Disabling a disabled account changes nothing and records nothing.
 */
export async function disableAccount(deps: AdminDeps, context: AdminContext, userId: string, reason: string) {
  if (userId === context.adminId) throw ADMIN_ERRORS.cannotDisableSelf()
  const user = await setActive(deps, context, userId, false, { reason })
  deps.metrics.sessionsEnded.inc({ reason: 'account_disabled' }, await deps.sessions.endAllForUser(userId))
  return user
}

/** Enables a disabled account again (its sessions stay ended: the user logs in anew), with `account_enabled`. */
export const enableAccount = (deps: AdminDeps, context: AdminContext, userId: string) => setActive(deps, context, userId, true, {})

async function setActive(deps: AdminDeps, context: AdminContext, userId: string, isActive: boolean, detail: { reason?: string }) {
  const now = new Date(deps.clock.now())
  const user = await deps.db.transaction(async (tx) => {
    const [user] = await tx.select().from(users).where(eq(users.id, userId)).for('update')
    if (!user) throw ADMIN_ERRORS.userNotFound()
    if (user.isActive === isActive) return user
    const [updated] = await tx.update(users).set({ isActive, updatedAt: now }).where(eq(users.id, userId)).returning()
    await recordUserEvent(tx, 'user.updated', updated!, now, deps.files)
    const type = isActive ? 'account_enabled' : 'account_disabled'
    await recordSecurityEvent(tx, { type, userId, actor: asAdmin(context), client: context.client, detail }, now)
    return updated!
  })
  await deps.userCache.invalidate(userId)
  return user
}

/** Ends every session of an account, with an `admin_logout` security event saying how many. */
export async function logoutAccount(deps: AdminDeps, context: AdminContext, userId: string) {
  if (!(await findUserById(deps.db, userId))) throw ADMIN_ERRORS.userNotFound()
  const ended = await deps.sessions.endAllForUser(userId)
  deps.metrics.sessionsEnded.inc({ reason: 'admin_logout' }, ended)
  await recordSecurityEventAfter(
    deps,
    { type: 'admin_logout', userId, actor: asAdmin(context), client: context.client, detail: { sessions: ended } },
    new Date(deps.clock.now()),
  )
}

