import { sql } from 'drizzle-orm'
import { bigint, index, integer, jsonb, pgTable, text, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'

/**
 * The transactional outbox: one row per user event, written in the same transaction (or statement) as the
 * change it describes, published by the relay afterwards. `seq` orders the rows (see relay.ts for why that order is
 * each user's commit order); `failedAt` marks a row the relay gave up on after too many attempts.
 */
export const outboxEvents = pgTable(
  'outbox_events',
  {
    seq: bigint({ mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    id: uuid().notNull().unique(),
    name: varchar({ length: 64 }).notNull(),
    // No foreign key: a user.deleted event outlives its user.
    userId: uuid().notNull(),
    payload: jsonb().notNull(),
    createdAt: timestamp({ withTimezone: true }).notNull(),
    publishedAt: timestamp({ withTimezone: true }),
    attempts: integer().notNull().default(0),
    lastError: text(),
    failedAt: timestamp({ withTimezone: true }),
  },
  (table) => [
    // The relay's queue: small partial indexes, so a large published history costs nothing.
    index('outbox_events_pending_idx').on(table.seq).where(sql`${table.publishedAt} is null and ${table.failedAt} is null`),
    index('outbox_events_failed_user_idx').on(table.userId).where(sql`${table.failedAt} is not null`),
    index('outbox_events_published_at_idx').on(table.publishedAt).where(sql`${table.publishedAt} is not null`),
  ],
)

export type OutboxRow = typeof outboxEvents.$inferSelect
