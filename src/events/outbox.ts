import type { Transaction } from '../db'
import type { UserRow } from '../users/table'
import { outboxEvents } from './table'

export type UserEventName = 'user.created' | 'user.updated' | 'user.deleted'

/** Stores the event of a user change with the same transaction as the change, so neither commits without the other. */
// Call it after writing the user row: that write's row lock is what makes each user's seq order its commit order.
export async function recordUserEvent(tx: Transaction, name: UserEventName, user: UserRow, at: Date) {
  await tx.insert(outboxEvents).values({ id: Bun.randomUUIDv7(), name, userId: user.id, payload: userEventBody(name, user), createdAt: at })
}

// The old service's wire body (compat): consumers read these keys, so they never change.
function userEventBody(name: UserEventName, user: UserRow) {
  if (name === 'user.deleted') return { id: user.id }
  return { id: user.id, email: user.email, full_name: user.fullName, profile_pic: user.profilePic }
}
