import { index, integer, pgTable, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'
import { users } from '../users/table'

/**
 * Password-reset and email-verification tokens. Only hashes are stored: `tokenHash` is the SHA-256 of the
 * link's 256-bit random token, `codeHash` an HMAC (keyed with SECRET_KEY) of the 6-digit code, since a
 * million codes would fall to a plain hash at once. A token is consumed by deleting its row (one statement:
 * of two concurrent confirms exactly one gets the row), a newer one of the same purpose deletes the older,
 * and the account's deletion deletes them all (the foreign key).
 */
export const recoveryTokens = pgTable(
  'recovery_tokens',
  {
    id: uuid().primaryKey(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    purpose: varchar({ length: 32 }).notNull().$type<TokenPurpose>(),
    /** The address the message went to: a verification proves this one, and codes are looked up by it. */
    email: varchar({ length: 254 }).notNull(),
    tokenHash: varchar({ length: 64 }).notNull().unique(),
    codeHash: varchar({ length: 64 }).notNull(),
    codeAttempts: integer().notNull().default(0),
    createdAt: timestamp({ withTimezone: true }).notNull(),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
  },
  (table) => [index('recovery_tokens_user_idx').on(table.userId, table.purpose), index('recovery_tokens_email_idx').on(table.email, table.purpose)],
)

export type TokenPurpose = 'password_reset' | 'email_verification'
export type RecoveryTokenRow = typeof recoveryTokens.$inferSelect
