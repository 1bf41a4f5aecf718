import { and, eq } from 'drizzle-orm'
import { isCommonPassword, type Passwords } from '../auth/passwords'
import type { Clock } from '../clock'
import type { Database } from '../db'
import { fieldError, FieldErrors } from '../errors'
import { recordUserEvent } from '../events/outbox'
import type { UpdateBody } from './model'
import { users, type UserRow } from './table'

export type UsersDeps = { db: Database; passwords: Passwords; clock: Clock }

const EMAIL_TAKEN = 'Email address already exists.'

/** Creates a user from already validated input, with its user.created event; a taken email is a field error. */
export async function createUser(
  { db, passwords, clock }: UsersDeps,
  input: { email: string; fullName: string; password: string },
): Promise<UserRow> {
  checkPasswordStrength(input.password)
  const now = new Date(clock.now())
  const row = {
    id: Bun.randomUUIDv7(),
    email: input.email.toLowerCase(),
    fullName: input.fullName,
    passwordHash: await passwords.hash(input.password),
    createdAt: now,
    updatedAt: now,
  }
  return db.transaction(async (tx) => {
    const [user] = await tx.insert(users).values(row).returning().catch(rethrowEmailTaken)
    await recordUserEvent(tx, 'user.created', user!, now)
    return user!
  })
}

export async function findUserById(db: Database, id: string) {
  const [user] = await db.select().from(users).where(eq(users.id, id))
  return user
}

export async function findUserByEmail(db: Database, email: string) {
  const [user] = await db.select().from(users).where(eq(users.email, email.toLowerCase()))
  return user
}

/** Runs inside the change's transaction, after the write: if it throws, the change is rolled back. */
export type BeforeCommit = () => Promise<unknown>

/**
 * Applies a partial update, with a user.updated event when anything changed; changing the email or
 * password needs the current password. `onPasswordChange` runs before the commit, so a change whose
 * follow-up fails is not kept.
 */
export async function updateUser(
  { db, passwords, clock }: UsersDeps,
  user: UserRow,
  body: UpdateBody,
  onPasswordChange: BeforeCommit = async () => {},
) {
  const email = body.email?.toLowerCase()
  const changes: Partial<UserRow> = {}
  if (email !== undefined && email !== user.email) changes.email = email
  if (body.full_name !== undefined && body.full_name !== user.fullName) changes.fullName = body.full_name
  if (body.password !== undefined) checkPasswordStrength(body.password)

  if (changes.email !== undefined || body.password !== undefined) {
    if (!body.current_password) throw fieldError('current_password', 'This field is required to change the email or password.')
    if (!(await passwords.verify(body.current_password, user.passwordHash)))
      throw fieldError('current_password', 'Your current password is incorrect.')
  }
  if (body.password !== undefined) changes.passwordHash = await passwords.hash(body.password)
  if (Object.keys(changes).length === 0) return user

  const now = new Date(clock.now())
  changes.updatedAt = now
  return db.transaction(async (tx) => {
    const [updated] = await tx.update(users).set(changes).where(eq(users.id, user.id)).returning().catch(rethrowEmailTaken)
    // Deleted meanwhile: nothing changed, so nothing to tell.
    if (!updated) return user
    await recordUserEvent(tx, 'user.updated', updated, now)
    if (body.password !== undefined) await onPasswordChange()
    return updated
  })
}

/** Deletes a user with its user.deleted event, running `beforeCommit` after the delete; false when there was none. */
export async function deleteUser({ db, clock }: Pick<UsersDeps, 'db' | 'clock'>, id: string, beforeCommit: BeforeCommit = async () => {}) {
  return db.transaction(async (tx) => {
    const [deleted] = await tx.delete(users).where(eq(users.id, id)).returning()
    if (!deleted) return false
    await recordUserEvent(tx, 'user.deleted', deleted, new Date(clock.now()))
    await beforeCommit()
    return true
  })
}

/** Grants or revokes admin rights by email, with a user.updated event when the flag changes; undefined when there is no such user. */
export async function setAdmin({ db, clock }: Pick<UsersDeps, 'db' | 'clock'>, email: string, isAdmin: boolean) {
  const now = new Date(clock.now())
  return db.transaction(async (tx) => {
    const [user] = await tx.select().from(users).where(eq(users.email, email.trim().toLowerCase())).for('update')
    if (!user || user.isAdmin === isAdmin) return user
    const [updated] = await tx.update(users).set({ isAdmin, updatedAt: now }).where(eq(users.id, user.id)).returning()
    await recordUserEvent(tx, 'user.updated', updated!, now)
    return updated
  })
}

/** Stamps the login time and, when given, replaces the hash that just verified (not one changed meanwhile). */
export async function recordLogin(db: Database, user: UserRow, at: Date, newPasswordHash?: string) {
  await db.update(users).set({ lastLogin: at }).where(eq(users.id, user.id))
  if (newPasswordHash)
    await db
      .update(users)
      .set({ passwordHash: newPasswordHash })
      .where(and(eq(users.id, user.id), eq(users.passwordHash, user.passwordHash)))
}

function checkPasswordStrength(password: string) {
  if (isCommonPassword(password)) throw fieldError('password', 'This password is too common.')
}

// The unique index decides races that a look-up before the insert could not.
function rethrowEmailTaken(error: unknown): never {
  if (isUniqueViolation(error)) throw new FieldErrors({ email: [EMAIL_TAKEN] })
  throw error
}

function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, cause } = error as { code?: unknown; cause?: unknown }
  return code === '23505' || isUniqueViolation(cause)
}
