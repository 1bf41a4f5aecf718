import { index, jsonb, pgTable, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'

/** Every kind of security event; stable names, part of the API (the security log and the audit read them). */
export const SECURITY_EVENT_TYPES = [
  'register',
  'login',
  'login_failed',
  'logout',
  'session_ended',
  'refresh_reuse_detected',
  'password_changed',
  'password_reset_requested',
  'password_reset',
  'email_changed',
  'email_verified',
  // A factor confirmed or registered, and one removed (mfa/service.ts); detail: `method`, and `factors_left`.
  'mfa_enabled',
  'mfa_disabled',
  'account_disabled',
  'account_enabled',
  'admin_logout',
  // An identity provider's account linked to a user (at a sign-in by the linking rule, or from settings) and
  // one unlinked (oidc/service.ts); detail: `provider`.
  'identity_linked',
  'identity_unlinked',
  // The `admin grant|revoke` command's changes.
  'admin_granted',
  'admin_revoked',
] as const

export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number]

/** Who did it: the account's own user, an admin (`actorId`), or the service itself (a detection, a command). */
export type ActorKind = 'user' | 'admin' | 'system'

/** A few scalar facts about an event; never a password, token or code. */
export type SecurityEventDetail = Record<string, string | number | boolean | null>

/**
 * The security log. No foreign key to users, on purpose: the log outlives an account for its retention
 * (an operator can still see what happened before a deletion), and the table stays a leaf every feature
 * can write to. It holds no email and no secret: a failed login for an unknown email is a row with no user.
 */
export const securityEvents = pgTable(
  'security_events',
  {
    id: uuid().primaryKey(),
    at: timestamp({ withTimezone: true }).notNull(),
    type: varchar({ length: 40 }).notNull().$type<SecurityEventType>(),
    /** The account the event is about; null only for a failed login naming no account. */
    userId: uuid(),
    actor: varchar({ length: 16 }).notNull().$type<ActorKind>(),
    /** The admin's id when `actor` is admin; the user's when it is the user. */
    actorId: uuid(),
    ip: varchar({ length: 64 }),
    userAgent: varchar({ length: 512 }),
    detail: jsonb().$type<SecurityEventDetail>().notNull().default({}),
  },
  (table) => [
    // A user's own log and the audit's user filter, newest first.
    index('security_events_user_idx').on(table.userId, table.at.desc(), table.id.desc()),
    index('security_events_type_idx').on(table.type, table.at.desc(), table.id.desc()),
    // The unfiltered audit and the retention job's delete.
    index('security_events_at_idx').on(table.at.desc(), table.id.desc()),
  ],
)

export type SecurityEventRow = typeof securityEvents.$inferSelect
