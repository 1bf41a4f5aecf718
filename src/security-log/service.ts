import { and, desc, eq, lt, sql, type SQL } from 'drizzle-orm'
import type { Database, Transaction } from '../db'
import { countUpTo, pageSlice } from '../db/pages'
import { SECURITY_LOG_ERRORS } from './errors'
import { securityEvents, type ActorKind, type SecurityEventDetail, type SecurityEventType } from './table'

/** Where a request came from, as far as the log keeps it (the same shape as auth's Client). */
export type ClientInfo = { ip: string | null; userAgent: string | null }

export type Actor = { kind: ActorKind; id?: string | null }

export type SecurityEvent = {
  type: SecurityEventType
  userId: string | null
  actor: Actor
  client?: ClientInfo
  detail?: SecurityEventDetail
}

/** The system as actor: the service's own detections and the command line. */
export const SYSTEM: Actor = { kind: 'system' }
/** The account's own user as actor. */
export const self = (userId: string): Actor => ({ kind: 'user', id: userId })

// The User-Agent header is the client's to fill: capped like a session's, so the log stores no blobs.
const MAX_USER_AGENT = 512
const MAX_IP = 64

/** The row of an event, for a caller that writes it in the same statement as the change (a CTE). */
export function securityEventRow(event: SecurityEvent, at: Date) {
  return {
    id: Bun.randomUUIDv7(),
    at,
    type: event.type,
    userId: event.userId,
    actor: event.actor.kind,
    actorId: event.actor.id ?? null,
    ip: event.client?.ip ? event.client.ip.slice(0, MAX_IP) : null,
    userAgent: event.client?.userAgent ? event.client.userAgent.slice(0, MAX_USER_AGENT) : null,
    detail: event.detail ?? {},
  }
}

/** Writes a security event with the caller's transaction, so it commits exactly when the change it records does. */
export async function recordSecurityEvent(tx: Database | Transaction, event: SecurityEvent, at: Date) {
  await tx.insert(securityEvents).values(securityEventRow(event, at))
}

export const DEFAULT_PAGE_SIZE = 20
// Counting a broad audit reads every match; past this `count` means "at least", as the directory's does.
export const MAX_COUNT = 10_000

export type SecurityLogQuery = { userId?: string; type?: SecurityEventType; page?: number; pageSize?: number }

/** One page of events, newest first, optionally for one user and of one type; a page past the last is an error. */
export async function listSecurityEvents(db: Database, query: SecurityLogQuery) {
  const pageSize = query.pageSize ?? DEFAULT_PAGE_SIZE
  const page = query.page ?? 1
  const conditions: SQL[] = []
  if (query.userId !== undefined) conditions.push(eq(securityEvents.userId, query.userId))
  if (query.type !== undefined) conditions.push(eq(securityEvents.type, query.type))
  const where = conditions.length ? and(...conditions) : undefined
  const found = await countUpTo(db, securityEvents, where, MAX_COUNT)
  const slice = pageSlice(found, page, pageSize)
  if (!slice) throw SECURITY_LOG_ERRORS.pageNotFound()
  const rows = await db
    .select()
    .from(securityEvents)
    .where(where)
    .orderBy(desc(securityEvents.at), desc(securityEvents.id))
    .limit(pageSize)
    .offset(slice.offset)
  return { count: found, page, hasNext: slice.hasNext, rows }
}

// Small batches: each delete holds its row locks briefly, so writers of new events never wait long.
const PRUNE_BATCH = 5_000

/** Deletes the events older than `before`, a batch at a time; returns how many went. */
export async function pruneSecurityEvents(db: Database, before: Date) {
  let deleted = 0
  for (;;) {
    const batch = db.select({ id: securityEvents.id }).from(securityEvents).where(lt(securityEvents.at, before)).limit(PRUNE_BATCH)
    const gone = await db.delete(securityEvents).where(sql`${securityEvents.id} in (${batch})`).returning({ id: securityEvents.id })
    deleted += gone.length
    if (gone.length < PRUNE_BATCH) return deleted
  }
}

/**
 * Records the event of a change that lives outside the database (sessions are in Redis), in an insert of
 * its own right after the change: no transaction spans both stores, and recording first could log an end
 * that then failed. If the insert fails, the change stands (the caller's request already did what it
 * asked), so the failure is logged with the event's facts instead of failing the request.
 */
export async function recordSecurityEventAfter(
  deps: { db: Database; logger: { error(obj: object, msg: string): void } },
  event: SecurityEvent,
  at: Date,
) {
  await recordSecurityEvent(deps.db, event, at).catch((err: unknown) =>
    deps.logger.error(
      { err, securityEvent: { type: event.type, userId: event.userId, actor: event.actor, ip: event.client?.ip ?? null } },
      'security event not recorded',
    ),
  )
}
