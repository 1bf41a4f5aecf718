import { boolean, index, pgTable, timestamp, unique, uuid, varchar } from 'drizzle-orm/pg-core'
import { users } from '../users/table'

/**
 * Accounts at OpenID providers linked to users: the provider's name (as configured) and its `sub`, which
 * together name one person there for good (an email can change hands, a subject cannot). The email is the
 * one the provider gave at the last sign-in, for the user's list. The account's deletion deletes them.
 */
export const userIdentities = pgTable(
  'user_identities',
  {
    id: uuid().primaryKey(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    provider: varchar({ length: 32 }).notNull(),
    // OIDC Core caps `sub` at 255 ASCII characters.
    subject: varchar({ length: 255 }).notNull(),
    email: varchar({ length: 254 }),
    emailVerified: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull(),
    lastUsedAt: timestamp({ withTimezone: true }),
  },
  (table) => [unique('user_identities_provider_subject').on(table.provider, table.subject), index('user_identities_user_idx').on(table.userId)],
)

export type IdentityRow = typeof userIdentities.$inferSelect
