import type { ServiceConfig } from '../config'
import { fieldError, FieldErrors, throttled } from '../errors'
import { recordSecurityEvent, recordSecurityEventAfter, self, SYSTEM } from '../security-log/service'
import { SESSION_ERRORS } from '../sessions/errors'
import type { Limit, RateDecision, RateLimiter } from '../sessions/rate-limiter'
import { sanitizeMetadata, type SessionStore } from '../sessions/store'
import type { UsersDeps } from '../users/service'
import type { UserCache } from '../users/cache'
import { findUserByEmail } from '../users/lookup'
import { createUser, recordLogin } from '../users/service'
import type { Client } from '../http/client'
import { AUTH_ERRORS } from './errors'
import type { Logger } from '../logger'
import type { Metrics } from '../metrics'
import type { Tokens } from '../sessions/tokens'

/**
 * What a login asks after a right password: whether the account has a second factor. A challenge makes the
 * login answer `mfa_required` with its token instead of tokens; null lets it through (no factor: no change).
 * `firstFactor` is how the first step was proven when not by the password (`oidc`), for the token's `amr`.
 * The mfa feature provides it (deps.ts), so auth does not depend on it.
 */
export type SecondFactorGate = (userId: string, firstFactor?: string) => Promise<{ mfaToken: string; methods: string[] } | null>

export type AuthDeps = Omit<UsersDeps, 'userCache'> & {
  userCache: Pick<UserCache, 'get' | 'invalidate'>
  config: ServiceConfig
  tokens: Tokens
  sessions: SessionStore
  limiter: RateLimiter
  logger: Pick<Logger, 'warn' | 'error'>
  metrics: Pick<Metrics, 'logins' | 'rateLimited' | 'sessionsEnded'>
  secondFactor?: SecondFactorGate
}

const INVALID_CREDENTIALS = 'Invalid email or password.'

/** Registers a user and starts their first session; registrations are limited per address, counted before the work. */
export async function register(deps: AuthDeps, input: { email: string; fullName: string; password: string }, client: Client) {
  if (client.ip) throwIfLimited(deps, 'register_address', await deps.limiter.hit(`register:ip:${client.ip}`, deps.config.limits.registerPerAddress))
  const user = await createUser(deps, input, client)
  return startSession(deps, user.id, client)
}

/**
 * Checks credentials and starts a session: the same 400 whether or not the email exists, and the same
 * time (a dummy hash is verified).
 *
 * Every attempt is counted before the password is hashed, in one atomic step over all of its limits (so a
 * parallel burst gets no more tries than a sequence), and taken back when the password was right:
 * - per account and address (`loginPerAccountAddress`, 10 per 15 minutes): the strict limit, and it stops
 *   only the address that fails;
 * - per address (`loginPerAddress`, 100 per 15 minutes): one address guessing across many accounts;
 * - per account (`loginPerAccount`, 50 per 15 minutes), enforced only against addresses that already have
 *   a failure for this account: guesses spread over many addresses slow to one per fresh address.
 * So a stranger can make their own addresses wait, and, past the account-wide limit, also an address of the
 * owner's that has just failed for the account; they cannot stop the owner logging in with the right
 * password from an address that has not been failing, and a refused attempt costs no hash.
 */
export async function login(deps: AuthDeps, email: string, password: string, client: Client) {
  const attempt = await countLoginAttempt(deps, email.trim().toLowerCase(), client.ip)

  const user = await findUserByEmail(deps.db, email.trim())
  const valid = user ? await deps.passwords.verify(password, user.passwordHash) : await deps.passwords.verifyDummy(password)
  // An inactive account answers exactly as wrong credentials do, as Django's ModelBackend did: its state is not revealed.
  if (!user || !valid || !user.isActive) {
    deps.metrics.logins.inc({ result: 'failure' })
    // Every failure writes one row, whether or not the email exists, so the answer takes the same time.
    // An unknown email leaves a row with no user and no address typed: the log tells an operator that
    // this client is failing, never which emails have accounts.
    const reason = !user ? 'unknown_account' : !valid ? 'wrong_password' : 'account_disabled'
    await recordSecurityEvent(
      deps.db,
      { type: 'login_failed', userId: user?.id ?? null, actor: user ? self(user.id) : SYSTEM, client, detail: { reason } },
      new Date(deps.clock.now()),
    )
    throw new FieldErrors({ email: [INVALID_CREDENTIALS], password: [INVALID_CREDENTIALS] })
  }
  await attempt.succeeded()
  // Only after the password: an unverified account is not revealed to someone who does not know it.
  if (deps.config.recovery.requireEmailVerification && !user.emailVerified)
    throw AUTH_ERRORS.emailNotVerified()
  // The login completes at POST /login/mfa/, which stamps last_login; a password hash upgrade waits for a
  // login without the step (a factor can only be added after such a login, which upgraded it then).
  const challenge = await deps.secondFactor?.(user.id)
  if (challenge) throw AUTH_ERRORS.mfaRequired(challenge.mfaToken, challenge.methods)
  // Old formats (and argon2id below today's cost) are upgraded now, while the plain password is at hand.
  const rehashed = deps.passwords.needsRehash(user.passwordHash)
    ? await deps.passwords.hash(deps.passwords.canonical(password, user.passwordHash))
    : undefined
  await recordLogin(deps.db, user, new Date(deps.clock.now()), client, rehashed)
  deps.metrics.logins.inc({ result: 'success' })
  return startSession(deps, user.id, client)
}

/** Counts a login attempt under each limit (or throws `throttled`); `succeeded` takes it back. */
async function countLoginAttempt(deps: AuthDeps, account: string, ip: string | null) {
  const { limits } = deps.config
  // Without an address (a caller in process, never one over HTTP) the pair key still keeps accounts apart.
  const pairKey = `login:account-address:${JSON.stringify([account, ip ?? ''])}`
  const named: [Limit, string][] = [
    [{ key: pairKey, rule: limits.loginPerAccountAddress }, 'login_account_address'],
    [{ key: `login:account:${account}`, rule: limits.loginPerAccount, enforcedAfter: 0 }, 'login_account'],
  ]
  if (ip) named.push([{ key: `login:ip:${ip}`, rule: limits.loginPerAddress }, 'login_address'])
  const attempt = await deps.limiter.hitAll(named.map(([limit]) => limit))
  if (attempt.refusedBy !== undefined) throwIfLimited(deps, named[attempt.refusedBy]![1], attempt)
  return {
    // The owner got in from this address: its earlier failures for the account are forgiven too.
    succeeded: () =>
      Promise.all([deps.limiter.reset(pairKey), deps.limiter.forgive(attempt.id, named.slice(1).map(([limit]) => limit.key))]),
  }
}

/**
 * Rotates a refresh token: the presented one stops working and a new pair is returned. A just-rotated
 * token presented again within the grace period gets the same successor (two tabs racing); after it,
 * the token is treated as stolen and its whole session ends.
 */
export async function refresh(deps: AuthDeps, token: string, client: Client) {
  const claims = await deps.tokens.verify(token, 'refresh')
  if (!claims) throw SESSION_ERRORS.tokenNotValid()
  // The same cached row the auth guard reads: fresh within the cache's stated bound, usually from memory.
  const user = await deps.userCache.get(claims.user_id)
  if (!user) throw SESSION_ERRORS.unknownUser()
  if (!user.isActive) throw SESSION_ERRORS.userInactive()
  // The store holds the session's start and ends it past SESSION_MAX_AGE whatever the token says; the new
  // tokens carry the login time on, so their exp stops at the same end. A token issued before auth_time
  // existed continues from its own iat (a later start): the store's end still holds for its session.
  const next = await deps.tokens.issuePair(claims.user_id, claims.sid, claims.auth_time ?? claims.iat, claims.amr)
  const result = await deps.sessions.rotate({
    userId: claims.user_id,
    sid: claims.sid,
    presentedJti: claims.jti,
    next,
    graceSeconds: deps.config.refreshGraceSeconds,
    ttlSeconds: deps.config.refreshTokenSeconds,
    maxAgeSeconds: deps.config.sessionMaxAgeSeconds,
    now: deps.clock.now(),
  })
  switch (result.kind) {
    case 'rotated':
      return next.pair
    case 'grace':
      return result.pair
    case 'reused':
      deps.metrics.sessionsEnded.inc({ reason: 'refresh_token_reuse' })
      deps.logger.warn({ userId: claims.user_id, sid: claims.sid }, 'refresh token reused: session ended')
      // The service ended the session, not its owner: whoever presented the token may be the thief, whose address this is.
      await recordSecurityEventAfter(
        deps,
        { type: 'refresh_reuse_detected', userId: claims.user_id, actor: SYSTEM, client, detail: { session: claims.sid } },
        new Date(deps.clock.now()),
      )
      throw SESSION_ERRORS.tokenReused()
    case 'ended':
      throw SESSION_ERRORS.tokenNotValid()
  }
}

/** Ends the session a refresh token belongs to, which must be the caller's, with a `logout` security event. */
export async function logout(deps: AuthDeps, userId: string, token: string, client: Client) {
  const claims = await deps.tokens.verify(token, 'refresh')
  if (!claims || claims.user_id !== userId) throw fieldError('refresh', 'Token is invalid or expired')
  if (!(await deps.sessions.end(userId, claims.sid))) return
  deps.metrics.sessionsEnded.inc({ reason: 'logout' })
  await recordSecurityEventAfter(deps, { type: 'logout', userId, actor: self(userId), client, detail: { session: claims.sid } }, new Date(deps.clock.now()))
}

/** Ends every session of the caller, with a `logout` security event saying how many. */
export async function logoutAll(deps: AuthDeps, userId: string, client: Client) {
  const ended = await deps.sessions.endAllForUser(userId)
  deps.metrics.sessionsEnded.inc({ reason: 'logout_all' }, ended)
  await recordSecurityEventAfter(deps, { type: 'logout', userId, actor: self(userId), client, detail: { all: true, sessions: ended } }, new Date(deps.clock.now()))
}

/** Ends one of the caller's sessions by id, with a `session_ended` security event. */
export async function endOwnSession(deps: AuthDeps, userId: string, sid: string, client: Client) {
  // Someone else's session is not found under the caller's id: as unknown as a missing one.
  if (!(await deps.sessions.end(userId, sid))) throw AUTH_ERRORS.sessionNotFound()
  deps.metrics.sessionsEnded.inc({ reason: 'session_ended_by_user' })
  await recordSecurityEventAfter(deps, { type: 'session_ended', userId, actor: self(userId), client, detail: { session: sid } }, new Date(deps.clock.now()))
}

/**
 * Starts a new session for the user (a login's, a registration's, a password reset's) and returns its token
 * pair; `amr` names how a login with a second factor or a passkey was proven.
 */
export async function startSession(
  deps: Pick<AuthDeps, 'tokens' | 'sessions' | 'config' | 'clock'>,
  userId: string,
  client: Client,
  amr?: string[],
) {
  const sid = crypto.randomUUID()
  const { pair, refreshJti } = await deps.tokens.issuePair(userId, sid, undefined, amr)
  await deps.sessions.create({
    sid,
    userId,
    refreshJti,
    ttlSeconds: Math.min(deps.config.refreshTokenSeconds, deps.config.sessionMaxAgeSeconds),
    ...sanitizeMetadata(client.ip, client.userAgent),
    now: deps.clock.now(),
  })
  return pair
}

function throwIfLimited(deps: Pick<AuthDeps, 'metrics'>, limit: string, decision: RateDecision) {
  if (decision.allowed) return
  deps.metrics.rateLimited.inc({ limit })
  throw throttled(decision.retryAfterSeconds)
}
