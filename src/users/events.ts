import type { Transaction } from '../db'
import type { FileStore } from '../storage/files'
import { toUserBody } from './model'
import type { UserRow } from './table'
import { outboxEvents } from '../events/table'

export type UserEventName = 'user.created' | 'user.updated' | 'user.deleted'

/**
 * Stores the event of a user change with the same transaction as the change, so neither commits without the
 * other (a registration writes its event in the same statement instead: see createUser).
 */
// Call it after writing the user row: that write's row lock is what makes each user's seq order its commit order.
export async function recordUserEvent(
  tx: Transaction,
  name: UserEventName,
  user: UserRow,
  at: Date,
  files: Pick<FileStore, 'url'>,
) {
  await tx.insert(outboxEvents).values(userEventRow(name, user, at, files))
}

/** recordUserEvent for many changes in one statement (a bulk import), stored in the order given. */
export async function recordUserEvents(
  tx: Transaction,
  events: { name: UserEventName; user: UserRow }[],
  at: Date,
  files: Pick<FileStore, 'url'>,
) {
  if (events.length > 0) await tx.insert(outboxEvents).values(events.map(({ name, user }) => userEventRow(name, user, at, files)))
}

/** The outbox row of a user event, for a caller that writes it in the same statement as the change. */
export function userEventRow(name: UserEventName, user: UserRow, at: Date, files: Pick<FileStore, 'url'>) {
  // The old service's wire body (compat): `{id, email, full_name, profile_pic}`, or `{id}` for a deletion.
  const payload = name === 'user.deleted' ? { id: user.id } : toUserBody(user, true, files)
  return { id: Bun.randomUUIDv7(), name, userId: user.id, payload, createdAt: at }
}
