import { sql } from 'drizzle-orm'
import { index, integer, jsonb, pgTable, text, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'

/**
 * The mail outbox: one row per message, written in the same transaction (or statement) as the change that
 * causes it, delivered by the mail relay afterwards. `payload` holds what the template needs (links and
 * codes included) and is cleared once the SMTP server has taken the message, so no usable token outlives
 * its delivery in the database; the delivered row itself is pruned after OUTBOX_RETENTION.
 *
 * A table of its own rather than rows in outbox_events: events are ordered per user and a failed one holds
 * its user's later events back, while each message stands alone, retried on its own schedule
 * (`nextAttemptAt`) so that one failing message never holds the others back.
 */
export const mailOutbox = pgTable(
  'mail_outbox',
  {
    id: uuid().primaryKey(),
    kind: varchar({ length: 64 }).notNull(),
    toAddress: varchar({ length: 254 }).notNull(),
    payload: jsonb(),
    createdAt: timestamp({ withTimezone: true }).notNull(),
    nextAttemptAt: timestamp({ withTimezone: true }).notNull(),
    attempts: integer().notNull().default(0),
    lastError: text(),
    sentAt: timestamp({ withTimezone: true }),
    failedAt: timestamp({ withTimezone: true }),
  },
  (table) => [
    index('mail_outbox_due_idx').on(table.nextAttemptAt).where(sql`${table.sentAt} is null and ${table.failedAt} is null`),
    index('mail_outbox_sent_at_idx').on(table.sentAt).where(sql`${table.sentAt} is not null`),
  ],
)

export type MailRow = typeof mailOutbox.$inferSelect
