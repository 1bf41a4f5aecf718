import { and, eq } from 'drizzle-orm'
import { unusablePassword } from './django-passwords'
import { isCommonPassword, type Passwords } from './passwords'
import type { Clock } from '../clock'
import type { Database, Transaction } from '../db'
import { fieldError, FieldErrors, throttled } from '../errors'
import { recordUserEvent, userEventRow } from './events'
import { outboxEvents } from '../events/table'
import type { Logger } from '../logger'
import type { Metrics } from '../metrics'
import { recordSecurityEvent, securityEventRow, self, SYSTEM, type ClientInfo } from '../security-log/service'
import { securityEvents, type SecurityEventDetail } from '../security-log/table'
import type { RateLimiter, RateRule } from '../sessions/rate-limiter'
import { isExternalPicture, type FileStore } from '../storage/files'
import type { ServiceConfig } from '../config'
import type { SessionStore } from '../sessions/store'
import type { UserCache } from './cache'
import { USER_ERRORS } from './errors'
import { findUserById } from './lookup'
import { cachedUserBody, toUserBody } from './model'
import { pictureLimits, readPicture } from './picture'
import { users, type UserRow } from './table'

export type UsersDeps = {
  db: Database
  passwords: Passwords
  clock: Clock
  files: FileStore
  logger: Pick<Logger, 'warn'>
  /** Told of every committed change, so no instance serves the old row from memory. */
  userCache: Pick<UserCache, 'invalidate'>
  /** What other features write in the same transaction as a user's creation or update (recovery's tokens and mail). */
  lifecycle?: UserLifecycle
}

/** Hooks run inside a user change's transaction, after its write: if one throws, the change is rolled back. */
export type UserLifecycle = {
  created(tx: Transaction, user: UserRow): Promise<void>
  updated(tx: Transaction, before: UserRow, after: UserRow, change: { passwordChanged: boolean }): Promise<void>
}

const EMAIL_TAKEN = 'Email address already exists.'

/**
 * A new account's fields: a password, or none at all (a user an identity provider vouched for: no password
 * signs in until one is set through a reset) with the address as verified as the provider says.
 */
export type NewUser = { email: string; fullName: string } & ({ password: string } | { password: null; emailVerified: boolean })

/** What a caller adds to a creation: the `register` event's detail, and rows written in the same transaction. */
export type CreateOptions = { detail?: SecurityEventDetail; alsoWrite?: (tx: Transaction, user: UserRow) => Promise<void> }

/**
 * Creates a user from already validated input, with its user.created event and its `register` security
 * event (from `client`); a taken email is a field error.
 */
export async function createUser(
  { db, passwords, clock, files, lifecycle }: Pick<UsersDeps, 'db' | 'passwords' | 'clock' | 'files' | 'lifecycle'>,
  input: NewUser,
  client?: ClientInfo,
  options: CreateOptions = {},
): Promise<UserRow> {
  if (input.password !== null) checkPasswordStrength(input.password)
  const now = new Date(clock.now())
  const row = {
    id: Bun.randomUUIDv7(),
    email: input.email.toLowerCase(),
    fullName: input.fullName,
    passwordHash: input.password === null ? unusablePassword() : await passwords.hash(input.password),
    emailVerified: input.password === null && input.emailVerified,
    createdAt: now,
    updatedAt: now,
  }
  // The row as the insert will store it, for the event: these are the column defaults of table.ts.
  const user: UserRow = { ...row, profilePic: null, isAdmin: false, isActive: true, lastLogin: null }
  const registered = { type: 'register', userId: row.id, actor: self(row.id), client, detail: options.detail } as const
  // One statement, so atomic without a transaction's extra round trips: the events and the user are
  // written together or, when the email is taken, none. A new user has no earlier event to order after.
  const insert = async (q: Database | Transaction) => {
    const event = q.$with('event').as(q.insert(outboxEvents).values(userEventRow('user.created', user, now, files)).returning({ seq: outboxEvents.seq }))
    const audit = q.$with('audit').as(q.insert(securityEvents).values(securityEventRow(registered, now)).returning({ id: securityEvents.id }))
    const [created] = await q.with(event, audit).insert(users).values(row).returning().catch(rethrowEmailTaken)
    return created!
  }
  if (!lifecycle && !options.alsoWrite) return insert(db)
  return db.transaction(async (tx) => {
    const created = await insert(tx)
    await lifecycle?.created(tx, created)
    await options.alsoWrite?.(tx, created)
    return created
  })
}

/** What an update may change, as plain values; the route maps the wire body (multipart or JSON) to this. */
export type UserChanges = { email?: string; fullName?: string; password?: string; currentPassword?: string }

/** The signed-in caller: their cached row and the session their token belongs to. */
/** Who asks: their row, their session, and where the request came from (for the security log). */
export type Caller = { user: UserRow; sid: string; client?: ClientInfo }

/** What the caller-facing operations need beyond {@link UsersDeps}. */
export type ProfileDeps = UsersDeps &
  PasswordCheckDeps & {
    config: Pick<ServiceConfig, 'profilePicMaxBytes' | 'profilePicMaxPixels' | 'profilePicMaxSide'>
    sessions: Pick<SessionStore, 'endAllForUser'>
    metrics: Pick<Metrics, 'sessionsEnded'>
    userCache: Pick<UserCache, 'get' | 'invalidate'>
  }

/**
 * The caller's own update, as the API sees it: `picture` undefined keeps the current one, null removes it.
 * A password change ends every other session; the caller's own continues.
 */
export async function updateProfile(deps: ProfileDeps, caller: Caller, changes: UserChanges & { picture?: Blob | null }) {
  // The current password is checked against the stored hash, never a cached copy.
  const user = await findUserById(deps.db, caller.user.id)
  if (!user) throw USER_ERRORS.userNotFound()
  const picture = await readPicture(changes.picture, user.id, pictureLimits(deps.config))
  const endOtherSessions = async () =>
    deps.metrics.sessionsEnded.inc({ reason: 'password_change' }, await deps.sessions.endAllForUser(user.id, { except: caller.sid }))
  return toUserBody(await updateUser(deps, user, changes, picture, endOtherSessions, caller.client), true, deps.files)
}

/** A user's record as `viewer` may see it: the email only for themselves or an admin. */
export async function viewUser(deps: Pick<ProfileDeps, 'userCache' | 'files'>, viewer: UserRow, id: string) {
  // Other users' rows come from the same invalidated cache as the caller's.
  const found = id === viewer.id ? viewer : await deps.userCache.get(id)
  if (!found) throw USER_ERRORS.userNotFound()
  return cachedUserBody(found, found.id === viewer.id || viewer.isAdmin, deps.files)
}

/** Deletes an account: one's own, or any as an admin; every session of it ends with the delete. */
export async function deleteAccount(deps: Omit<ProfileDeps, 'passwords'>, caller: UserRow, id: string) {
  // Non-admins learn nothing about other ids: always forbidden, never not found.
  if (id !== caller.id && !caller.isAdmin) throw USER_ERRORS.permissionDenied()
  const endSessions = async () => deps.metrics.sessionsEnded.inc({ reason: 'account_deleted' }, await deps.sessions.endAllForUser(id))
  if (!(await deleteUser(deps, id, endSessions))) throw USER_ERRORS.userNotFound()
}

/** Runs inside the change's transaction, after the write: if it throws, the change is rolled back. */
export type BeforeCommit = () => Promise<unknown>

/** A picture to store (already checked), or null to remove the current one. */
export type PictureUpload = { key: string; bytes: Uint8Array; mime: string } | null

/** What checking `current_password` needs beyond {@link UsersDeps}: its limit, per user. */
export type PasswordCheckDeps = {
  limiter: RateLimiter
  config: { limits: { currentPasswordPerUser: RateRule } }
  metrics: Pick<Metrics, 'rateLimited'>
}

/**
 * Applies a partial update, with a user.updated event when anything changed; changing the email or
 * password needs the current password. `onPasswordChange` runs before the commit, so a change whose
 * follow-up fails is not kept. A new picture is stored before the transaction (and removed again if it
 * does not commit); the picture it replaces is deleted after the commit.
 */
export async function updateUser(
  deps: UsersDeps & PasswordCheckDeps,
  user: UserRow,
  input: UserChanges,
  picture?: PictureUpload,
  onPasswordChange: BeforeCommit = async () => {},
  client?: ClientInfo,
) {
  const { db, passwords, clock, files } = deps
  const email = input.email?.toLowerCase()
  const changes: Partial<UserRow> = {}
  // A new address is unproven until its own verification (lifecycle.updated sends it).
  if (email !== undefined && email !== user.email) Object.assign(changes, { email, emailVerified: false })
  if (input.fullName !== undefined && input.fullName !== user.fullName) changes.fullName = input.fullName
  if (picture !== undefined && (picture?.key ?? null) !== user.profilePic) changes.profilePic = picture?.key ?? null
  if (input.password !== undefined) checkPasswordStrength(input.password)

  if (changes.email !== undefined || input.password !== undefined) {
    if (!input.currentPassword) throw fieldError('current_password', 'This field is required to change the email or password.')
    await checkCurrentPassword(deps, user, input.currentPassword)
  }
  if (input.password !== undefined) changes.passwordHash = await passwords.hash(input.password)
  if (Object.keys(changes).length === 0) return user

  if (picture && changes.profilePic) await files.put(picture.key, picture.bytes, picture.mime)
  const now = new Date(clock.now())
  changes.updatedAt = now
  try {
    const { before, after } = await db.transaction(async (tx) => {
      // Locked first: the picture to delete is the one this update replaces, not the one the guard read.
      const [before] = await tx.select().from(users).where(eq(users.id, user.id)).for('update')
      if (!before) return { before, after: user }
      const [after] = await tx.update(users).set(changes).where(eq(users.id, user.id)).returning().catch(rethrowEmailTaken)
      await recordUserEvent(tx, 'user.updated', after!, now, files)
      // No address in the detail: the log keeps no email, the old one least of all.
      if (after!.email !== before.email) await recordSecurityEvent(tx, { type: 'email_changed', userId: user.id, actor: self(user.id), client }, now)
      if (input.password !== undefined) await recordSecurityEvent(tx, { type: 'password_changed', userId: user.id, actor: self(user.id), client }, now)
      await deps.lifecycle?.updated(tx, before, after!, { passwordChanged: input.password !== undefined })
      if (input.password !== undefined) await onPasswordChange()
      return { before, after: after! }
    })
    await deps.userCache.invalidate(user.id)
    if (before?.profilePic && before.profilePic !== after.profilePic) await deleteFile(deps, before.profilePic)
    return after
  } catch (error) {
    if (picture && changes.profilePic && picture.key !== user.profilePic) await deleteFile(deps, picture.key)
    throw error
  }
}

/**
 * A stolen access token must not become unlimited guesses at the password (and then a new email and
 * password): each check is counted per user before the hash, and a right password clears the count. A
 * thief holding the token can use up the limit and so delay the owner's own change for one window; the
 * owner can end that token at once by logging out everywhere.
 */
export async function checkCurrentPassword(deps: Pick<UsersDeps, 'passwords'> & PasswordCheckDeps, user: UserRow, password: string) {
  const key = `current-password:user:${user.id}`
  const decision = await deps.limiter.hit(key, deps.config.limits.currentPasswordPerUser)
  if (!decision.allowed) {
    deps.metrics.rateLimited.inc({ limit: 'current_password' })
    throw throttled(decision.retryAfterSeconds)
  }
  if (!(await deps.passwords.verify(password, user.passwordHash))) throw fieldError('current_password', 'Your current password is incorrect.')
  await deps.limiter.reset(key)
}

/** Deletes a user with its user.deleted event, running `beforeCommit` after the delete, then its picture; false when there was none. */
export async function deleteUser(deps: Omit<UsersDeps, 'passwords'>, id: string, beforeCommit: BeforeCommit = async () => {}) {
  const deleted = await deps.db.transaction(async (tx) => {
    const [deleted] = await tx.delete(users).where(eq(users.id, id)).returning()
    if (!deleted) return undefined
    await recordUserEvent(tx, 'user.deleted', deleted, new Date(deps.clock.now()), deps.files)
    await beforeCommit()
    return deleted
  })
  if (!deleted) return false
  await deps.userCache.invalidate(id)
  if (deleted.profilePic) await deleteFile(deps, deleted.profilePic)
  return true
}

/**
 * Grants or revokes admin rights by email (the command line's job, so the system is the actor), with a
 * user.updated event and a security event when the flag changes; undefined when there is no such user.
 */
export async function setAdmin(
  { db, clock, files, userCache }: Pick<UsersDeps, 'db' | 'clock' | 'files' | 'userCache'>,
  email: string,
  isAdmin: boolean,
) {
  const now = new Date(clock.now())
  const user = await db.transaction(async (tx) => {
    const [user] = await tx.select().from(users).where(eq(users.email, email.trim().toLowerCase())).for('update')
    if (!user || user.isAdmin === isAdmin) return user
    const [updated] = await tx.update(users).set({ isAdmin, updatedAt: now }).where(eq(users.id, user.id)).returning()
    await recordUserEvent(tx, 'user.updated', updated!, now, files)
    await recordSecurityEvent(tx, { type: isAdmin ? 'admin_granted' : 'admin_revoked', userId: user.id, actor: SYSTEM }, now)
    return updated
  })
  if (user) await userCache.invalidate(user.id)
  return user
}

// A file left behind wastes space but breaks nothing, so a failed delete is logged, not raised.
async function deleteFile({ files, logger }: Pick<UsersDeps, 'files' | 'logger'>, key: string) {
  if (isExternalPicture(key)) return
  await files.delete(key).catch((err: unknown) => logger.warn({ err, key }, 'could not delete a replaced profile picture'))
}

/**
 * Stamps the login time with its `login` security event in the same statement (so both or neither are
 * kept) and, when given, replaces the hash that just verified (not one changed meanwhile).
 */
export async function recordLogin(
  db: Database,
  user: UserRow,
  at: Date,
  client: ClientInfo,
  newPasswordHash?: string,
  detail?: SecurityEventDetail,
) {
  const event = { type: 'login', userId: user.id, actor: self(user.id), client, detail } as const
  const audit = db.$with('audit').as(db.insert(securityEvents).values(securityEventRow(event, at)).returning({ id: securityEvents.id }))
  await db.with(audit).update(users).set({ lastLogin: at }).where(eq(users.id, user.id))
  if (newPasswordHash)
    await db
      .update(users)
      .set({ passwordHash: newPasswordHash })
      .where(and(eq(users.id, user.id), eq(users.passwordHash, user.passwordHash)))
}

/** A field error when the password is one of the most common ones. */
export function checkPasswordStrength(password: string) {
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
