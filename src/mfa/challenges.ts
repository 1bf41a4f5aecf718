import { and, eq, gt, lt, sql } from 'drizzle-orm'
import type { Database } from '../db'
import { sha256 } from './secrets'
import { mfaChallenges, type ChallengePurpose } from './table'

/** An mfa_token and a WebAuthn challenge live this long: time to open an app or touch a key, not to wander off. */
export const CHALLENGE_SECONDS = 5 * 60
/** An mfa_token allows this many codes; the next finds it void. */
export const MFA_TOKEN_ATTEMPTS = 5

/**
 * Stores a single-use secret's hash (with an mfa_token, the login's first factor when it was not the
 * password); expired rows of any purpose are swept on the way, so unused ones do not pile up.
 */
export async function storeChallenge(db: Database, purpose: ChallengePurpose, secret: string, userId: string | null, now: number, firstFactor?: string) {
  await db.transaction(async (tx) => {
    await tx.delete(mfaChallenges).where(lt(mfaChallenges.expiresAt, new Date(now)))
    await tx
      .insert(mfaChallenges)
      .values({ secretHash: sha256(secret), purpose, userId, firstFactor, expiresAt: new Date(now + CHALLENGE_SECONDS * 1000) })
  })
}

/** Spends a live challenge (of `userId` when given): true for exactly one caller, however many race for it. */
export async function consumeChallenge(db: Database, purpose: ChallengePurpose, secret: string, now: number, userId?: string) {
  const found = await db
    .delete(mfaChallenges)
    .where(
      and(
        eq(mfaChallenges.secretHash, sha256(secret)),
        eq(mfaChallenges.purpose, purpose),
        gt(mfaChallenges.expiresAt, new Date(now)),
        userId === undefined ? undefined : eq(mfaChallenges.userId, userId),
      ),
    )
    .returning({ userId: mfaChallenges.userId })
  return found.length > 0
}

/**
 * Counts one code against an mfa_token, in the statement that finds it, before the code is looked at: of
 * any number of parallel tries, five at most get past this. The token's user and the login's first factor,
 * or undefined when the token is wrong, expired or used up.
 */
export async function countTokenAttempt(db: Database, mfaToken: string, now: number) {
  const [row] = await db
    .update(mfaChallenges)
    .set({ attempts: sql`${mfaChallenges.attempts} + 1` })
    .where(
      and(
        eq(mfaChallenges.secretHash, sha256(mfaToken)),
        eq(mfaChallenges.purpose, 'mfa_login'),
        gt(mfaChallenges.expiresAt, new Date(now)),
        lt(mfaChallenges.attempts, MFA_TOKEN_ATTEMPTS),
      ),
    )
    .returning({ userId: mfaChallenges.userId, firstFactor: mfaChallenges.firstFactor })
  return row?.userId ? { userId: row.userId, firstFactor: row.firstFactor ?? 'pwd' } : undefined
}
