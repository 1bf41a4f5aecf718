import { sql } from 'drizzle-orm'
import { boolean, check, pgTable, text, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'

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
    createdAt: timestamp({ withTimezone: true }).notNull(),
    updatedAt: timestamp({ withTimezone: true }).notNull(),
    lastLogin: timestamp({ withTimezone: true }),
  },
  (table) => [check('users_email_lower_case', sql`${table.email} = lower(${table.email})`)],
)

export type UserRow = typeof users.$inferSelect
