import type { Database } from '../db'
import { FieldErrors, unauthorized } from '../errors'
import type { UsersDeps } from '../users/service'
import { createUser, findUserByEmail, findUserById, recordLogin } from '../users/service'
import type { Tokens } from './tokens'

export type AuthDeps = UsersDeps & { tokens: Tokens }

const INVALID_CREDENTIALS = 'Invalid email or password.'

const newSessionId = () => crypto.randomUUID()

/** Registers a user and starts their first session. */
export async function register(deps: AuthDeps, input: { email: string; fullName: string; password: string }) {
  const user = await createUser(deps, input)
  const { pair } = await deps.tokens.issuePair(user.id, newSessionId())
  return pair
}

/** Checks credentials and starts a session; the same 400 whether or not the email exists. */
export async function login(deps: AuthDeps, email: string, password: string) {
  const user = await findUserByEmail(deps.db, email.trim())
  if (!user) {
    await deps.passwords.verifyDummy(password)
    throw invalidCredentials()
  }
  if (!(await deps.passwords.verify(password, user.passwordHash))) throw invalidCredentials()
  await recordLogin(deps.db, user.id, new Date(deps.clock.now()))
  const { pair } = await deps.tokens.issuePair(user.id, newSessionId())
  return pair
}

/** Exchanges a refresh token for a new pair in the same session. */
export async function refresh(deps: { db: Database; tokens: Tokens }, token: string) {
  const claims = await deps.tokens.verify(token, 'refresh')
  if (!claims) throw unauthorized('Token is invalid or expired', 'token_not_valid')
  if (!(await findUserById(deps.db, claims.user_id))) throw unauthorized('User not found', 'user_not_found')
  const { pair } = await deps.tokens.issuePair(claims.user_id, claims.sid ?? newSessionId())
  return pair
}

const invalidCredentials = () => new FieldErrors({ email: [INVALID_CREDENTIALS], password: [INVALID_CREDENTIALS] })
