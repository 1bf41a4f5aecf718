import type { ServiceConfig } from '../deps'
import { ApiError, fieldError, FieldErrors, unauthorized } from '../errors'
import type { RateDecision, RateLimiter, RateRule } from '../sessions/rate-limiter'
import { sanitizeMetadata, type SessionStore } from '../sessions/store'
import type { UsersDeps } from '../users/service'
import type { UserCache } from '../users/cache'
import { createUser, findUserByEmail, recordLogin } from '../users/service'
import type { Client } from './client'
import type { Metrics } from '../metrics'
import type { Tokens } from './tokens'

export type AuthDeps = Omit<UsersDeps, 'userCache'> & {
  userCache: Pick<UserCache, 'get' | 'invalidate'>
  config: ServiceConfig
  tokens: Tokens
  sessions: SessionStore
  limiter: RateLimiter
  logger: { warn(obj: object, msg: string): void }
  metrics: Pick<Metrics, 'logins' | 'rateLimited' | 'sessionsEnded'>
}

const INVALID_CREDENTIALS = 'Invalid email or password.'

/** Registers a user and starts their first session; registrations are limited per address. */
export async function register(deps: AuthDeps, input: { email: string; fullName: string; password: string }, client: Client) {
  if (client.ip) throwIfLimited(deps, 'register_address', await deps.limiter.hit(`register:ip:${client.ip}`, deps.config.limits.registerPerAddress))
  const user = await createUser(deps, input)
  return startSession(deps, user.id, client)
}

/**
 * Checks credentials and starts a session: the same 400 whether or not the email exists, and the same
 * time (a dummy hash is verified). Failures are limited per account and per address; a limited attempt
 * is refused before any hashing, so guessing costs the attacker without costing us.
 */
export async function login(deps: AuthDeps, email: string, password: string, client: Client) {
  const { limits } = deps.config
  const rules: [string, RateRule, string][] = [[`login:account:${email.trim().toLowerCase()}`, limits.loginPerAccount, 'login_account']]
  if (client.ip) rules.push([`login:ip:${client.ip}`, limits.loginPerAddress, 'login_address'])
  const decisions = await Promise.all(rules.map(([key, rule]) => deps.limiter.check(key, rule)))
  decisions.forEach((decision, i) => throwIfLimited(deps, rules[i]![2], decision))

  const user = await findUserByEmail(deps.db, email.trim())
  const valid = user ? await deps.passwords.verify(password, user.passwordHash) : await deps.passwords.verifyDummy(password)
  // An inactive account answers exactly as wrong credentials do, as Django's ModelBackend did: its state is not revealed.
  if (!user || !valid || !user.isActive) {
    deps.metrics.logins.inc({ result: 'failure' })
    await Promise.all(rules.map(([key, rule]) => deps.limiter.hit(key, rule)))
    throw new FieldErrors({ email: [INVALID_CREDENTIALS], password: [INVALID_CREDENTIALS] })
  }
  await deps.limiter.reset(rules[0]![0])
  // Old formats (and argon2id below today's cost) are upgraded now, while the plain password is at hand.
  const rehashed = deps.passwords.needsRehash(user.passwordHash)
    ? await deps.passwords.hash(deps.passwords.canonical(password, user.passwordHash))
    : undefined
  await recordLogin(deps.db, user, new Date(deps.clock.now()), rehashed)
  deps.metrics.logins.inc({ result: 'success' })
  return startSession(deps, user.id, client)
}

/**
 * Rotates a refresh token: the presented one stops working and a new pair is returned. A just-rotated
 * token presented again within the grace period gets the same successor (two tabs racing); after it,
 * the token is treated as stolen and its whole session ends.
 */
export async function refresh(deps: AuthDeps, token: string) {
  const claims = await deps.tokens.verify(token, 'refresh')
  if (!claims) throw tokenNotValid()
  // The same cached row the auth guard reads: fresh within the cache's stated bound, usually from memory.
  const user = await deps.userCache.get(claims.user_id)
  if (!user) throw unknownUser()
  if (!user.isActive) throw userInactive()
  const next = await deps.tokens.issuePair(claims.user_id, claims.sid)
  const result = await deps.sessions.rotate({
    sid: claims.sid,
    presentedJti: claims.jti,
    next,
    graceSeconds: deps.config.refreshGraceSeconds,
    ttlSeconds: deps.config.refreshTokenSeconds,
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
      throw unauthorized('Token has already been used; the session has been ended.', 'token_not_valid')
    case 'ended':
      throw tokenNotValid()
  }
}

/** Ends the session a refresh token belongs to, which must be the caller's. */
export async function logout(deps: AuthDeps, userId: string, token: string) {
  const claims = await deps.tokens.verify(token, 'refresh')
  if (!claims || claims.user_id !== userId) throw fieldError('refresh', 'Token is invalid or expired')
  if (await deps.sessions.end(claims.sid)) deps.metrics.sessionsEnded.inc({ reason: 'logout' })
}

async function startSession(deps: AuthDeps, userId: string, client: Client) {
  const sid = crypto.randomUUID()
  const { pair, refreshJti } = await deps.tokens.issuePair(userId, sid)
  await deps.sessions.create({
    sid,
    userId,
    refreshJti,
    ttlSeconds: deps.config.refreshTokenSeconds,
    ...sanitizeMetadata(client.ip, client.userAgent),
    now: deps.clock.now(),
  })
  return pair
}

function throwIfLimited(deps: Pick<AuthDeps, 'metrics'>, limit: string, decision: RateDecision) {
  if (decision.allowed) return
  deps.metrics.rateLimited.inc({ limit })
  const seconds = decision.retryAfterSeconds
  throw new ApiError(429, 'throttled', `Request was throttled. Expected available in ${seconds} seconds.`, { 'retry-after': String(seconds) })
}

// simplejwt's answers, which the old clients know; the guard gives the same.
export const tokenNotValid = () => unauthorized('Token is invalid or expired', 'token_not_valid')
export const unknownUser = () => unauthorized('User not found', 'user_not_found')

/** simplejwt's answer for a valid token of a deactivated user. */
export const userInactive = () => unauthorized('User is inactive', 'user_inactive')
