import { and, desc, eq, gt, inArray, lt, sql } from 'drizzle-orm'
import type { Client } from '../http/client'
import { AUTH_ERRORS } from '../auth/errors'
import { startSession, type AuthDeps } from '../auth/service'
import type { Clock } from '../clock'
import { queryRows, type Database, type Transaction } from '../db'
import type { ServiceConfig } from '../config'
import { throttled } from '../errors'
import { queueMail } from '../mail/messages'
import type { Metrics } from '../metrics'
import { removeFactorsOfUnprovenAccount } from '../mfa/unproven'
import { unlinkUnprovenIdentities } from '../oidc/identities'
import { recordSecurityEvent, securityEventRow, self, SYSTEM } from '../security-log/service'
import type { RateLimiter } from '../sessions/rate-limiter'
import type { FileStore } from '../storage/files'
import type { UserCache } from '../users/cache'
import { recordUserEvent } from '../users/events'
import { checkPasswordStrength, type UserLifecycle } from '../users/service'
import { users, type UserRow } from '../users/table'
import { RecoveryError } from './errors'
import { codeHash, newCode, newToken, sameDigest, tokenHash } from './secrets'
import { recoveryTokens, type RecoveryTokenRow, type TokenPurpose } from './table'

/** A code allows this many wrong tries; the next one finds it void. */
export const CODE_ATTEMPTS = 5

type IssueDeps = { clock: Clock; config: Pick<ServiceConfig, 'secretKey' | 'recovery'> }

export type RecoveryDeps = Pick<AuthDeps, 'tokens' | 'sessions' | 'secondFactor'> &
  IssueDeps & {
    db: Database
    config: ServiceConfig
    passwords: AuthDeps['passwords']
    files: Pick<FileStore, 'url'>
    limiter: RateLimiter
    userCache: Pick<UserCache, 'invalidate'>
    metrics: Pick<Metrics, 'rateLimited' | 'sessionsEnded'>
  }

/** A link token, or an email with the code that came beside it. */
export type Proof = { token?: string; email?: string; code?: string }

/** What a user's creation and update send: a verification for a new address, notices of email and password changes. */
export function recoveryLifecycle(deps: IssueDeps): UserLifecycle {
  return {
    // An address a provider has proven needs no message to prove it again.
    created: async (tx, user) => {
      if (!user.emailVerified) await sendVerification(tx, deps, user)
    },
    async updated(tx, before, after, { passwordChanged }) {
      const at = new Date(deps.clock.now())
      if (before.email !== after.email) {
        // Every pending link went to the old address, which no longer proves or recovers anything.
        await tx.delete(recoveryTokens).where(eq(recoveryTokens.userId, after.id))
        await sendVerification(tx, deps, after)
        await queueMail(tx, { kind: 'email_changed', to: before.email, payload: { full_name: after.fullName, new_email: after.email } }, at)
      }
      if (passwordChanged) {
        await voidTokens(tx, after.id, 'password_reset')
        await queueMail(tx, { kind: 'password_changed', to: after.email, payload: { full_name: after.fullName, reset: false } }, at)
      }
    },
  }
}

/**
 * Queues a reset message when the email belongs to an active account, and answers the same either way.
 *
 * No enumeration: the limits count the email whether or not it exists, and the rest is one statement that
 * runs the same plan for both (look the address up, void older tokens, insert the token and the message,
 * each for the zero or one account found) in a transaction that commits without waiting for the disk; the
 * message itself leaves later, from the relay. What still differs is writing two rows or none, which costs
 * microseconds against the request's milliseconds.
 */
export async function requestPasswordReset(deps: RecoveryDeps, rawEmail: string, client: Client) {
  const email = rawEmail.trim().toLowerCase()
  await countMailRequest(deps, email, client.ip)
  const now = deps.clock.now()
  const lifetime = deps.config.recovery.resetTokenSeconds
  const token = newToken()
  const code = newCode()
  const tokenId = Bun.randomUUIDv7()
  const at = new Date(now).toISOString()
  const payload = JSON.stringify({ token, code, minutes: Math.round(lifetime / 60) })
  // Only for an account that exists, inside the same plan as the rest: nothing is written for an unknown
  // email. The requester has not proven to be the user, so the system is the actor; the address is theirs.
  const audit = securityEventRow({ type: 'password_reset_requested', userId: null, actor: SYSTEM, client }, new Date(now))
  // A commit that wrote rows waits for the WAL flush and one that wrote none does not: milliseconds that
  // would tell a known email from an unknown one. Neither waits with an asynchronous commit; the cost is
  // that a database crash in the next fraction of a second may forget the request (the user asks again).
  await deps.db.transaction(async (tx) => {
    await tx.execute(sql`set local synchronous_commit = off`)
    await queryRows(
    tx,
    sql`with target as (
      select id, email, full_name from users where email = ${email} and is_active
    ), voided as (
      delete from recovery_tokens where purpose = 'password_reset' and user_id in (select id from target)
    ), issued as (
      insert into recovery_tokens (id, user_id, purpose, email, token_hash, code_hash, created_at, expires_at)
      select ${tokenId}::uuid, id, 'password_reset', email, ${tokenHash(token)}, ${codeHash(deps.config.secretKey, tokenId, code)},
        ${at}::timestamptz, ${new Date(now + lifetime * 1000).toISOString()}::timestamptz
      from target
    ), queued as (
      insert into mail_outbox (id, kind, to_address, payload, created_at, next_attempt_at)
      select ${Bun.randomUUIDv7()}::uuid, 'password_reset', email, ${payload}::jsonb || jsonb_build_object('full_name', full_name),
        ${at}::timestamptz, ${at}::timestamptz
      from target
    ), audit as (
      insert into security_events (id, at, type, user_id, actor, actor_id, ip, user_agent, detail)
      select ${audit.id}::uuid, ${at}::timestamptz, ${audit.type}, id, ${audit.actor}, null, ${audit.ip}, ${audit.userAgent}, '{}'::jsonb
      from target
    )
    select count(*)::int as found from target`,
    )
  })
}

/**
 * Sets a new password with a reset token or code: the token is spent, every session ends (each instance
 * sees it at once, through the session store) and a new one starts; the address is now proven too, and
 * provider identities that do not prove it are unlinked.
 */
export async function confirmPasswordReset(deps: RecoveryDeps, proof: Proof, password: string, client: Client) {
  const pending = await findPending(deps, 'password_reset', proof)
  checkPasswordStrength(password)
  const passwordHash = await deps.passwords.hash(password)
  const now = new Date(deps.clock.now())
  const user = await deps.db.transaction(async (tx) => {
    await consume(tx, pending)
    // Read before the update proves the address: what was set up on an account nobody had proven yet.
    const [before] = await tx.select({ emailVerified: users.emailVerified }).from(users).where(eq(users.id, pending.row.userId)).for('update')
    const [user] = await tx
      .update(users)
      .set({ passwordHash, emailVerified: true, updatedAt: now })
      .where(and(eq(users.id, pending.row.userId), eq(users.email, pending.row.email), eq(users.isActive, true)))
      .returning()
    // The address changed (or the account was disabled) since the message went out: the proof is void.
    if (!user) throw new RecoveryError(pending.error)
    await voidTokens(tx, user.id, 'password_reset')
    await unlinkUnprovenIdentities(tx, user, client, now)
    if (!before?.emailVerified) await removeFactorsOfUnprovenAccount(tx, user.id, client, now)
    await recordUserEvent(tx, 'user.updated', user, now, deps.files)
    // The holder of the reset proof acts as the user: the message reached their inbox.
    await recordSecurityEvent(tx, { type: 'password_reset', userId: user.id, actor: self(user.id), client }, now)
    await queueMail(tx, { kind: 'password_changed', to: user.email, payload: { full_name: user.fullName, reset: true } }, now)
    return user
  })
  await deps.userCache.invalidate(user.id)
  deps.metrics.sessionsEnded.inc({ reason: 'password_reset' }, await deps.sessions.endAllForUser(user.id))
  // A reset proves the mailbox, not the second factor: an account with one gets the login's step-up, not a session.
  const challenge = await deps.secondFactor?.(user.id)
  if (challenge) throw AUTH_ERRORS.mfaRequired(challenge.mfaToken, challenge.methods)
  return startSession(deps, user.id, client)
}

/** Marks the address proven with a verification token or code, with a user.updated event and an `email_verified` security event. */
export async function verifyEmail(deps: RecoveryDeps, proof: Proof, client: Client): Promise<UserRow> {
  const pending = await findPending(deps, 'email_verification', proof)
  const now = new Date(deps.clock.now())
  const user = await deps.db.transaction(async (tx) => {
    await consume(tx, pending)
    const [user] = await tx
      .update(users)
      .set({ emailVerified: true, updatedAt: now })
      .where(and(eq(users.id, pending.row.userId), eq(users.email, pending.row.email)))
      .returning()
    if (!user) throw new RecoveryError(pending.error)
    await recordUserEvent(tx, 'user.updated', user, now, deps.files)
    await recordSecurityEvent(tx, { type: 'email_verified', userId: user.id, actor: self(user.id), client }, now)
    return user
  })
  await deps.userCache.invalidate(user.id)
  return user
}

/** Sends a new verification message to the caller's address (voiding the older), unless it is already proven. */
export async function resendVerification(deps: RecoveryDeps, userId: string, client: Client) {
  await deps.db.transaction(async (tx) => {
    // Locked: two resends at once still leave exactly one valid message. Read here, not from the guard's cache.
    const [user] = await tx.select().from(users).where(eq(users.id, userId)).for('update')
    if (!user) return
    await countMailRequest(deps, user.email, client.ip)
    if (!user.emailVerified) await sendVerification(tx, deps, user)
  })
}

/** Issues a verification token for the user's current address and queues its message, in the caller's transaction. */
async function sendVerification(tx: Transaction, deps: IssueDeps, user: UserRow) {
  const lifetime = deps.config.recovery.verifyTokenSeconds
  const { token, code } = await issueToken(tx, deps, 'email_verification', user, lifetime)
  await queueMail(
    tx,
    { kind: 'email_verification', to: user.email, payload: { full_name: user.fullName, token, code, hours: Math.round(lifetime / 3600) } },
    new Date(deps.clock.now()),
  )
}

// A newer message makes the older ones void: at most one token per account and purpose is ever valid.
async function issueToken(tx: Transaction, deps: IssueDeps, purpose: TokenPurpose, user: UserRow, lifetimeSeconds: number) {
  const token = newToken()
  const code = newCode()
  const id = Bun.randomUUIDv7()
  const now = deps.clock.now()
  await voidTokens(tx, user.id, purpose)
  await tx.insert(recoveryTokens).values({
    id,
    userId: user.id,
    purpose,
    email: user.email,
    tokenHash: tokenHash(token),
    codeHash: codeHash(deps.config.secretKey, id, code),
    createdAt: new Date(now),
    expiresAt: new Date(now + lifetimeSeconds * 1000),
  })
  return { token, code }
}

const voidTokens = (tx: Transaction, userId: string, purpose: TokenPurpose) =>
  tx.delete(recoveryTokens).where(and(eq(recoveryTokens.userId, userId), eq(recoveryTokens.purpose, purpose)))

// Counted before the work, for the caller's address and for the email alike: an unknown email is counted
// the same as a known one, so a 429 says nothing about whether an account exists.
async function countMailRequest(deps: Pick<RecoveryDeps, 'limiter' | 'config' | 'metrics'>, email: string, ip: string | null) {
  const { limits } = deps.config
  const named = [{ key: `mail:email:${email}`, rule: limits.mailPerEmail, name: 'mail_email' }]
  if (ip) named.push({ key: `mail:ip:${ip}`, rule: limits.mailPerAddress, name: 'mail_address' })
  const attempt = await deps.limiter.hitAll(named)
  if (attempt.allowed) return
  deps.metrics.rateLimited.inc({ limit: named[attempt.refusedBy ?? 0]!.name })
  throw throttled(attempt.retryAfterSeconds)
}

type Pending = { row: RecoveryTokenRow; error: 'invalid_token' | 'invalid_code' }

/** The unexpired token a proof names; a code is checked here, each try counted before the comparison. */
async function findPending(deps: Pick<RecoveryDeps, 'db' | 'clock' | 'config'>, purpose: TokenPurpose, proof: Proof): Promise<Pending> {
  const now = new Date(deps.clock.now())
  if (proof.token !== undefined) {
    const [row] = await deps.db
      .select()
      .from(recoveryTokens)
      .where(and(eq(recoveryTokens.tokenHash, tokenHash(proof.token)), eq(recoveryTokens.purpose, purpose), gt(recoveryTokens.expiresAt, now)))
    if (!row) throw new RecoveryError('invalid_token')
    return { row, error: 'invalid_token' }
  }
  if (proof.email === undefined || proof.code === undefined) throw new RecoveryError('token_required')
  const latest = deps.db
    .select({ id: recoveryTokens.id })
    .from(recoveryTokens)
    .where(and(eq(recoveryTokens.email, proof.email.trim().toLowerCase()), eq(recoveryTokens.purpose, purpose), gt(recoveryTokens.expiresAt, now)))
    .orderBy(desc(recoveryTokens.createdAt))
    .limit(1)
  // The try is counted in the same statement that finds the row, and only while tries are left: parallel
  // guesses queue on the row's lock, so a burst gets no more than CODE_ATTEMPTS.
  const [row] = await deps.db
    .update(recoveryTokens)
    .set({ codeAttempts: sql`${recoveryTokens.codeAttempts} + 1` })
    .where(and(inArray(recoveryTokens.id, latest), lt(recoveryTokens.codeAttempts, CODE_ATTEMPTS)))
    .returning()
  if (!row) throw new RecoveryError('invalid_code')
  if (!sameDigest(codeHash(deps.config.secretKey, row.id, proof.code), row.codeHash)) {
    if (row.codeAttempts >= CODE_ATTEMPTS) await deps.db.delete(recoveryTokens).where(eq(recoveryTokens.id, row.id))
    throw new RecoveryError('invalid_code')
  }
  return { row, error: 'invalid_code' }
}

// Deleting the row is the spend: of two concurrent confirms, only one deletes it and goes on.
async function consume(tx: Transaction, { row, error }: Pending) {
  const [spent] = await tx.delete(recoveryTokens).where(eq(recoveryTokens.id, row.id)).returning({ id: recoveryTokens.id })
  if (!spent) throw new RecoveryError(error)
}
