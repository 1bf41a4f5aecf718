import { t } from 'elysia'
import { SECURITY_EVENT_TYPES, type SecurityEventRow, type SecurityEventType as SecurityEventTypeName } from './table'

// A union of literals, not t.UnionEnum: Elysia fills an absent optional UnionEnum query parameter with its
// first value, which turned "no type filter" into "register only".
export const SecurityEventType = t.Unsafe<SecurityEventTypeName>(
  t.Union(
    SECURITY_EVENT_TYPES.map((type) => t.Literal(type)),
    { description: 'The kind of event' },
  ),
)

/** What a user sees of one of their own events. */
export const OwnSecurityEvent = t.Object({
  id: t.String({ description: 'UUID' }),
  type: SecurityEventType,
  at: t.String({ format: 'date-time' }),
  ip: t.Union([t.String(), t.Null()], { description: 'The client address of the request that caused it' }),
  user_agent: t.Union([t.String(), t.Null()]),
})

/** What an admin sees: the user's view, plus whose event it is, who acted, and its detail. */
export const AuditEvent = t.Object({
  ...OwnSecurityEvent.properties,
  user_id: t.Union([t.String(), t.Null()], { description: 'The account; null for a failed login naming no account' }),
  actor: t.Union([t.Literal('user'), t.Literal('admin'), t.Literal('system')]),
  actor_id: t.Union([t.String(), t.Null()], { description: "The admin's (or the user's) id; null for the system" }),
  detail: t.Record(t.String(), t.Union([t.String(), t.Number(), t.Boolean(), t.Null()])),
})

/** DRF's page shape over the given item. */
export const pageOf = <T extends Parameters<typeof t.Array>[0]>(item: T) =>
  t.Object(
    {
      count: t.Integer(),
      next: t.Union([t.String({ description: 'Absolute URL' }), t.Null()]),
      previous: t.Union([t.String({ description: 'Absolute URL' }), t.Null()]),
      results: t.Array(item),
    },
    { description: "DRF's page shape" },
  )

export const toOwnSecurityEvent = (row: SecurityEventRow) => ({
  id: row.id,
  type: row.type,
  at: row.at.toISOString(),
  ip: row.ip,
  user_agent: row.userAgent,
})

export const toAuditEvent = (row: SecurityEventRow) => ({
  ...toOwnSecurityEvent(row),
  user_id: row.userId,
  actor: row.actor,
  actor_id: row.actorId,
  detail: row.detail,
})

// Strings checked by pattern, as the directory's: a coerced number's range error would not name its field.
export const PageQuery = {
  page: t.Optional(t.String({ pattern: '^[1-9][0-9]{0,8}$', error: 'A valid page number is required.' })),
  page_size: t.Optional(t.String({ pattern: '^([1-9][0-9]?|100)$', error: 'A whole number from 1 to 100 is required.' })),
}

/** The absolute URL of another page of the same listing, for DRF's `next` and `previous`. */
export function pageLink(publicUrl: string, path: string, query: Record<string, string | undefined>, page: number) {
  const url = new URL(`${publicUrl}${path}`)
  for (const [key, value] of Object.entries(query)) if (value !== undefined && key !== 'page') url.searchParams.set(key, value)
  url.searchParams.set('page', String(page))
  return url.toString()
}
