import { and, eq, isNull, ne, or } from 'drizzle-orm'
import type { Transaction } from '../db'
import { recordSecurityEvent, self, type ClientInfo } from '../security-log/service'
import { userIdentities } from './table'

/**
 * At a password reset the mailbox's holder becomes the account's one owner (every session ends too). An
 * identity whose provider did not prove that same address may have been put there by someone else: a
 * sign-up through a provider that does not check emails before the owner came, or a link made while the
 * account was in other hands. Kept, it would stay their way in; it is unlinked (the owner can link it again).
 */
export async function unlinkUnprovenIdentities(tx: Transaction, user: { id: string; email: string }, client: ClientInfo, now: Date) {
  const removed = await tx
    .delete(userIdentities)
    .where(
      and(
        eq(userIdentities.userId, user.id),
        or(eq(userIdentities.emailVerified, false), isNull(userIdentities.email), ne(userIdentities.email, user.email)),
      ),
    )
    .returning({ provider: userIdentities.provider })
  for (const { provider } of removed)
    await recordSecurityEvent(tx, { type: 'identity_unlinked', userId: user.id, actor: self(user.id), client, detail: { provider, reason: 'password_reset' } }, now)
}
