import { eq } from 'drizzle-orm'
import type { Transaction } from '../db'
import { recordSecurityEvent, self, type ClientInfo } from '../security-log/service'
import { mfaFactors, mfaRecoveryCodes } from './table'

/**
 * At a password reset that proves the account's address for the first time, every second factor goes: all
 * of them were set up before anyone had proven the mailbox, possibly by someone who registered the owner's
 * address first. Kept, a squatter's passkey would still sign in alone and their app would hold the owner's
 * reset behind a step-up only the squatter can take. The owner sets their own factors up again.
 */
export async function removeFactorsOfUnprovenAccount(tx: Transaction, userId: string, client: ClientInfo, now: Date) {
  const removed = await tx.delete(mfaFactors).where(eq(mfaFactors.userId, userId)).returning({ type: mfaFactors.type, confirmedAt: mfaFactors.confirmedAt })
  await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId))
  for (const factor of removed.filter((factor) => factor.confirmedAt))
    await recordSecurityEvent(tx, { type: 'mfa_disabled', userId, actor: self(userId), client, detail: { method: factor.type, reason: 'password_reset' } }, now)
}
