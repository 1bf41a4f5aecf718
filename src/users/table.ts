import { sql } from 'drizzle-orm'
import { boolean, check, index, pgTable, text, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'

export const users = pgTable(
  'users',
  {
    id: uuid().primaryKey(),
    // Stored lower-cased (the check enforces it), so the plain unique index is case-insensitive.
    email: varchar({ length: 254 }).notNull().unique(),
    fullName: varchar({ length: 250 }).notNull(),
    passwordHash: text().notNull(),
    profilePic: text(),
    isAdmin: boolean().notNull().default(false),
    // Imported from the old service's is_active: such a user keeps their record but cannot log in.
    isActive: boolean().notNull().default(true),
    // Proven by a verification link or code (or a password reset, which proves the same); an email change
    // clears it. Accounts from before verification existed, and those imported from the old service, count as verified.
    emailVerified: boolean().notNull().default(false),
    createdAt: timestamp({ withTimezone: true }).notNull(),
    updatedAt: timestamp({ withTimezone: true }).notNull(),
    lastLogin: timestamp({ withTimezone: true }),
  },
  (table) => [
    check('users_email_lower_case', sql`${table.email} = lower(${table.email})`),
    // The directory's search matches the start of any word of the name. The 'simple' configuration splits
    // the name into lower-cased words without stemming, and a GIN index over them answers prefix queries
    // (`ann:*`) without reading the table: the search stays fast at a million users. Queries must use the
    // same expression (`searchVector` in directory.ts) for the planner to pick this index.
    index('users_full_name_search').using('gin', sql`to_tsvector('simple', ${table.fullName})`),
    // The directory's order (name regardless of case, then id) for paging without sorting the whole table.
    index('users_full_name_order').on(sql`lower(${table.fullName})`, table.id),
  ],
)

export type UserRow = typeof users.$inferSelect
