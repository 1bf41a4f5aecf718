import { and, asc, count, eq, isNotNull, isNull, lt, or } from 'drizzle-orm'
import type { Client } from '../http/client'
import { AUTH_ERRORS } from '../auth/errors'
import { startSession, type AuthDeps, type SecondFactorGate } from '../auth/service'
import type { ServiceConfig } from '../config'
import type { Database, Transaction } from '../db'
import { fieldError, ServiceError, throttled } from '../errors'
import { queueMail } from '../mail/messages'
import { recordSecurityEvent, self } from '../security-log/service'
import type { Metrics } from '../metrics'
import { USER_ERRORS } from '../users/errors'
import { findUserById } from '../users/lookup'
import { checkCurrentPassword, recordLogin, type PasswordCheckDeps } from '../users/service'
import { users, type UserRow } from '../users/table'
import { consumeChallenge, countTokenAttempt, storeChallenge } from './challenges'
import { MFA_ERRORS } from './errors'
import { decryptSecret, encryptionKey, encryptSecret, newRecoveryCode, newSecret, RECOVERY_CODE_COUNT, recoveryCodeHash } from './secrets'
import { mfaFactors, mfaRecoveryCodes, type FactorRow, type FactorType } from './table'
import { matchingStep, newTotpSecret, otpauthUrl } from './totp'

export type MfaDeps = PasswordCheckDeps &
  Pick<AuthDeps, 'tokens' | 'sessions' | 'clock' | 'passwords'> & {
    db: Database
    config: ServiceConfig
    metrics: Pick<Metrics, 'rateLimited' | 'logins'>
  }

/** How a completed login was proven, as the access token's `amr` says it. */
export type Amr = 'otp' | 'recovery' | 'webauthn'

const confirmed = (userId: string) => and(eq(mfaFactors.userId, userId), isNotNull(mfaFactors.confirmedAt))

const secretKey = (config: ServiceConfig) => encryptionKey(config.mfa.encryptionSecret ?? config.secretKey)

/** Checks `current_password` (counted per user) against the stored hash, never a cached copy; answers the fresh row. */
export async function checkPassword(deps: MfaDeps, caller: UserRow, password: string) {
  const user = await findUserById(deps.db, caller.id)
  if (!user) throw USER_ERRORS.userNotFound()
  await checkCurrentPassword(deps, user, password)
  return user
}

/** What the list shows of a factor. */
export const factorBody = (factor: FactorRow) => ({
  id: factor.id,
  type: factor.type,
  name: factor.name,
  created_at: factor.createdAt.toISOString(),
  last_used_at: factor.lastUsedAt?.toISOString() ?? null,
})

/** The caller's confirmed factors, oldest first, and how many recovery codes they have left. */
export async function listFactors(deps: Pick<MfaDeps, 'db'>, userId: string) {
  const [factors, [codes]] = await Promise.all([
    deps.db.select().from(mfaFactors).where(confirmed(userId)).orderBy(asc(mfaFactors.createdAt), asc(mfaFactors.id)),
    deps.db.select({ left: count() }).from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId)),
  ])
  return { factors: factors.map(factorBody), recovery_codes_left: codes?.left ?? 0 }
}

/**
 * Starts a TOTP enrolment: a new secret, shown once, kept encrypted, pending until a code confirms it. An
 * earlier pending enrolment of the caller's is replaced (its QR code was never confirmed).
 */
export async function enrolTotp(deps: MfaDeps, caller: UserRow, currentPassword: string, name = 'Authenticator app') {
  const user = await checkPassword(deps, caller, currentPassword)
  const id = Bun.randomUUIDv7()
  const secret = newTotpSecret()
  await deps.db.transaction(async (tx) => {
    await tx.delete(mfaFactors).where(and(eq(mfaFactors.userId, user.id), eq(mfaFactors.type, 'totp'), isNull(mfaFactors.confirmedAt)))
    await tx.insert(mfaFactors).values({
      id,
      userId: user.id,
      type: 'totp',
      name,
      createdAt: new Date(deps.clock.now()),
      totpSecret: encryptSecret(secretKey(deps.config), id, secret),
    })
  })
  return { id, secret, otpauth_url: otpauthUrl(secret, deps.config.mfa.issuer, user.email) }
}

/** Confirms a pending TOTP factor with a code from the app; answers a new set of recovery codes, shown once. */
export async function confirmTotp(deps: MfaDeps, user: UserRow, factorId: string, code: string, client: Client) {
  const [factor] = await deps.db
    .select()
    .from(mfaFactors)
    .where(and(eq(mfaFactors.id, factorId), eq(mfaFactors.userId, user.id), eq(mfaFactors.type, 'totp')))
  if (!factor) throw MFA_ERRORS.factorNotFound()
  if (factor.confirmedAt) throw MFA_ERRORS.alreadyConfirmed()
  const now = deps.clock.now()
  const step = matchingStep(decryptSecret(secretKey(deps.config), factor.id, factor.totpSecret!), code, now)
  if (step === null) throw MFA_ERRORS.invalidCode()
  return deps.db.transaction(async (tx) => {
    // Still pending in the same statement: of two confirmations racing, one issues codes.
    const [done] = await tx
      .update(mfaFactors)
      .set({ confirmedAt: new Date(now), totpLastStep: step, lastUsedAt: new Date(now) })
      .where(and(eq(mfaFactors.id, factor.id), isNull(mfaFactors.confirmedAt)))
      .returning()
    if (!done) throw MFA_ERRORS.alreadyConfirmed()
    return { recovery_codes: await factorEnabled(tx, user, 'totp', now, client) }
  })
}

/**
 * What enabling any factor does in its transaction: a new set of recovery codes (replacing the old), the
 * security event `mfa_enabled`, and a notice to the account's address.
 */
export async function factorEnabled(tx: Transaction, user: UserRow, method: FactorType, now: number, client: Client) {
  const codes = await replaceRecoveryCodes(tx, user.id, now)
  const at = new Date(now)
  await recordSecurityEvent(tx, { type: 'mfa_enabled', userId: user.id, actor: self(user.id), client, detail: { method } }, at)
  await queueMail(tx, { kind: 'mfa_enabled', to: user.email, payload: { full_name: user.fullName, method } }, at)
  return codes
}

/** A new set of recovery codes, replacing the old; needs the current password and a confirmed factor. */
export async function regenerateRecoveryCodes(deps: MfaDeps, caller: UserRow, currentPassword: string) {
  const user = await checkPassword(deps, caller, currentPassword)
  const now = deps.clock.now()
  return deps.db.transaction(async (tx) => {
    const [factors] = await tx.select({ n: count() }).from(mfaFactors).where(confirmed(user.id))
    if (!factors?.n) throw new ServiceError('invalid', 'mfa_not_enabled', 'Add an authenticator app or a passkey first.')
    const codes = await replaceRecoveryCodes(tx, user.id, now)
    await queueMail(tx, { kind: 'recovery_codes_regenerated', to: user.email, payload: { full_name: user.fullName } }, new Date(now))
    return { recovery_codes: codes }
  })
}

async function replaceRecoveryCodes(tx: Transaction, userId: string, now: number) {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
  await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId))
  await tx.insert(mfaRecoveryCodes).values(codes.map((code) => ({ userId, codeHash: recoveryCodeHash(code), createdAt: new Date(now) })))
  return codes
}

/**
 * Removes one of the caller's factors (a pending enrolment too); needs the current password. With the last
 * confirmed factor the recovery codes go as well: the password alone signs in again.
 */
export async function removeFactor(deps: MfaDeps, caller: UserRow, factorId: string, currentPassword: string, client: Client) {
  const user = await checkPassword(deps, caller, currentPassword)
  const now = deps.clock.now()
  await deps.db.transaction(async (tx) => {
    // The user's row serialises removals: two racing for the last two factors both see what the other left.
    await tx.select({ id: users.id }).from(users).where(eq(users.id, user.id)).for('update')
    const [removed] = await tx
      .delete(mfaFactors)
      .where(and(eq(mfaFactors.id, factorId), eq(mfaFactors.userId, user.id)))
      .returning()
    if (!removed) throw MFA_ERRORS.factorNotFound()
    if (!removed.confirmedAt) return
    const [left] = await tx.select({ n: count() }).from(mfaFactors).where(confirmed(user.id))
    const factorsLeft = left?.n ?? 0
    if (factorsLeft === 0) await tx.delete(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, user.id))
    const detail = { method: removed.type, factors_left: factorsLeft }
    await recordSecurityEvent(tx, { type: 'mfa_disabled', userId: user.id, actor: self(user.id), client, detail }, new Date(now))
    await queueMail(tx, { kind: 'mfa_disabled', to: user.email, payload: { full_name: user.fullName, ...detail } }, new Date(now))
  })
}

/**
 * The login's question after a right password (auth/service.ts): with a confirmed factor, an mfa_token for
 * the second step and the methods that can take it; without one, null, and the login goes on unchanged.
 */
export function mfaGate(deps: Pick<MfaDeps, 'db' | 'clock'>): SecondFactorGate {
  return async (userId, firstFactor) => {
    const [types, [codes]] = await Promise.all([
      deps.db.selectDistinct({ type: mfaFactors.type }).from(mfaFactors).where(confirmed(userId)),
      deps.db.select({ left: count() }).from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, userId)),
    ])
    if (types.length === 0) return null
    const mfaToken = newSecret()
    await storeChallenge(deps.db, 'mfa_login', mfaToken, userId, deps.clock.now(), firstFactor)
    const has = (type: FactorType) => types.some((row) => row.type === type)
    const methods = [...(has('totp') ? ['totp'] : []), ...(codes?.left ? ['recovery_code'] : []), ...(has('passkey') ? ['passkey'] : [])]
    return { mfaToken, methods }
  }
}

/**
 * The login's second step: a TOTP code or a recovery code against the mfa_token the password step gave.
 * The attempt is counted before the code is looked at, twice: against the token (5), and against the
 * account over all its tokens (`mfaCodesPerUser`), since whoever has the password can get a new token at
 * will. A right code clears the account's count; the token is spent by the first right code.
 */
export async function completeMfaLogin(deps: MfaDeps, mfaToken: string, code: string, client: Client) {
  const now = deps.clock.now()
  const step = await countTokenAttempt(deps.db, mfaToken, now)
  if (!step) throw MFA_ERRORS.invalidMfaToken()
  const { userId, firstFactor } = step
  const limitKey = `mfa-code:user:${userId}`
  const decision = await deps.limiter.hit(limitKey, deps.config.limits.mfaCodesPerUser)
  if (!decision.allowed) {
    deps.metrics.rateLimited.inc({ limit: 'mfa_code' })
    throw throttled(decision.retryAfterSeconds)
  }
  const method = (await acceptTotp(deps, userId, code.trim(), now)) ?? (await acceptRecoveryCode(deps.db, userId, code))
  if (!method) {
    deps.metrics.logins.inc({ result: 'failure' })
    const event = { type: 'login_failed', userId, actor: self(userId), client, detail: { reason: 'wrong_second_factor' } } as const
    await recordSecurityEvent(deps.db, event, new Date(now))
    throw MFA_ERRORS.invalidCode()
  }
  // Two right codes racing (a TOTP and a recovery code): one login.
  if (!(await consumeChallenge(deps.db, 'mfa_login', mfaToken, now, userId))) throw MFA_ERRORS.invalidMfaToken()
  await deps.limiter.reset(limitKey)
  return finishLogin(deps, userId, [firstFactor, method], client)
}

/**
 * A session for a user whose login was proven (a second factor, a passkey, an identity provider), if the
 * account may still sign in; the `login` security event names the methods (the token's `amr`).
 */
export async function finishLogin(deps: MfaDeps, userId: string, amr: string[], client: Client) {
  const user = await findUserById(deps.db, userId)
  if (!user?.isActive) throw fieldError('non_field_errors', 'This account cannot sign in.')
  if (deps.config.recovery.requireEmailVerification && !user.emailVerified) throw AUTH_ERRORS.emailNotVerified()
  await recordLogin(deps.db, user, new Date(deps.clock.now()), client, undefined, { method: amr.join('+') })
  deps.metrics.logins.inc({ result: 'success' })
  return startSession(deps, user.id, client, amr)
}

/** 'otp' when the code is right for one of the user's TOTP factors and its time step is newer than any that factor accepted. */
async function acceptTotp(deps: MfaDeps, userId: string, code: string, now: number): Promise<Amr | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined
  const factors = await deps.db.select().from(mfaFactors).where(and(confirmed(userId), eq(mfaFactors.type, 'totp')))
  for (const factor of factors) {
    const step = matchingStep(decryptSecret(secretKey(deps.config), factor.id, factor.totpSecret!), code, now)
    if (step === null) continue
    // The step is recorded only if newer, in one statement: a replayed code, even in parallel, is refused.
    const [accepted] = await deps.db
      .update(mfaFactors)
      .set({ totpLastStep: step, lastUsedAt: new Date(now) })
      .where(and(eq(mfaFactors.id, factor.id), or(isNull(mfaFactors.totpLastStep), lt(mfaFactors.totpLastStep, step))))
      .returning({ id: mfaFactors.id })
    if (accepted) return 'otp'
  }
  return undefined
}

/** 'recovery' when the code is one of the user's unused recovery codes, which it uses up (deleting it: one caller wins). */
async function acceptRecoveryCode(db: Database, userId: string, code: string): Promise<Amr | undefined> {
  const used = await db
    .delete(mfaRecoveryCodes)
    .where(and(eq(mfaRecoveryCodes.userId, userId), eq(mfaRecoveryCodes.codeHash, recoveryCodeHash(code))))
    .returning({ userId: mfaRecoveryCodes.userId })
  return used.length ? 'recovery' : undefined
}
