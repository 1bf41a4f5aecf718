import { bigint, index, integer, jsonb, pgTable, text, timestamp, uuid, varchar } from 'drizzle-orm/pg-core'
import { users } from '../users/table'

export type FactorType = 'totp' | 'passkey'

/**
 * A user's second factors. A TOTP factor keeps its secret encrypted (AES-256-GCM, secrets.ts) and the
 * last time step it accepted, so that no code is accepted twice; it is pending until a code confirms it.
 * A passkey keeps its credential id and public key (both public), and its signature counter. The account's
 * deletion deletes them all (the foreign key).
 */
export const mfaFactors = pgTable(
  'mfa_factors',
  {
    id: uuid().primaryKey(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: varchar({ length: 16 }).notNull().$type<FactorType>(),
    name: varchar({ length: 64 }).notNull(),
    /** Null while a TOTP enrolment waits for its first code; a passkey is confirmed by its registration. */
    confirmedAt: timestamp({ withTimezone: true }),
    createdAt: timestamp({ withTimezone: true }).notNull(),
    lastUsedAt: timestamp({ withTimezone: true }),
    totpSecret: text(),
    totpLastStep: bigint({ mode: 'number' }),
    credentialId: varchar({ length: 1024 }).unique(),
    publicKey: text(),
    signCount: bigint({ mode: 'number' }),
    transports: jsonb().$type<string[]>(),
  },
  (table) => [index('mfa_factors_user_idx').on(table.userId)],
)

/** Recovery codes, as SHA-256 digests: each is 80 random bits, so a plain hash is enough; using one deletes its row. */
export const mfaRecoveryCodes = pgTable(
  'mfa_recovery_codes',
  {
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: varchar({ length: 64 }).primaryKey(),
    createdAt: timestamp({ withTimezone: true }).notNull(),
  },
  (table) => [index('mfa_recovery_codes_user_idx').on(table.userId)],
)

export type ChallengePurpose = 'mfa_login' | 'passkey_register' | 'passkey_login'

/**
 * Short-lived, single-use secrets: a login's `mfa_token` (between the password and the second factor) and
 * WebAuthn challenges. Stored as the SHA-256 of the secret; `attempts` counts an mfa_token's codes, raised
 * in the same statement that checks it, before the code is looked at.
 */
export const mfaChallenges = pgTable(
  'mfa_challenges',
  {
    secretHash: varchar({ length: 64 }).primaryKey(),
    purpose: varchar({ length: 32 }).notNull().$type<ChallengePurpose>(),
    userId: uuid().references(() => users.id, { onDelete: 'cascade' }),
    attempts: integer().notNull().default(0),
    /** An mfa_token's first step, as the access token's `amr` names it (`oidc` for a provider's sign-in); null for a password. */
    firstFactor: varchar({ length: 16 }),
    expiresAt: timestamp({ withTimezone: true }).notNull(),
  },
  (table) => [index('mfa_challenges_expiry_idx').on(table.expiresAt)],
)

export type FactorRow = typeof mfaFactors.$inferSelect
