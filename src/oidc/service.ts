import { createHash } from 'node:crypto'
import { and, asc, count, eq, isNotNull } from 'drizzle-orm'
import * as oidc from 'openid-client'
import { AUTH_ERRORS } from '../auth/errors'
import type { AuthDeps } from '../auth/service'
import type { Database, Transaction } from '../db'
import { FieldErrors, ServiceError, throttled } from '../errors'
import type { Client } from '../http/client'
import { characterCount, isEmail } from '../http/formats'
import { finishLogin, type MfaDeps } from '../mfa/service'
import { mfaFactors } from '../mfa/table'
import { recordSecurityEvent, self } from '../security-log/service'
import { isUnusable } from '../users/django-passwords'
import { findUserByEmail, findUserById } from '../users/lookup'
import { createUser, type UsersDeps } from '../users/service'
import { users } from '../users/table'
import { CallbackRefusal, OIDC_ERRORS, type CallbackErrorCode } from './errors'
import type { FlowStore } from './flow-store'
import { isUnreachable, type OidcProviders } from './providers'
import { userIdentities, type IdentityRow } from './table'

export type OidcDeps = MfaDeps &
  Pick<UsersDeps, 'files' | 'lifecycle'> &
  Pick<AuthDeps, 'secondFactor' | 'logger'> & {
    oidcProviders: OidcProviders
    oidcFlows: FlowStore
  }

/** A sign-in between the redirect to the provider and its callback: long enough to log in there, no longer. */
export const STATE_SECONDS = 10 * 60
/** The code a callback hands the frontend, for POST /oauth/token/: the next page load exchanges it. */
export const CODE_SECONDS = 60
/** How a sign-in through a provider is named in the access token's `amr` and in the security log. */
export const OIDC_AMR = 'oidc'

/**
 * What the state stands for, kept server-side: nothing of it travels through the browser but its key. A
 * sign-in is bound to the browser that started it (`browser`: its cookie's hash), a link to its user.
 */
type PendingSignIn = { provider: string; redirectUri: string; nonce: string; verifier: string; browser?: string; linkUserId?: string }

/** Who a flow is for: the browser that opened the authorize URL (a sign-in), or a signed-in user (a link from settings). */
export type FlowOwner = { browser: string } | { linkUserId: string }

/**
 * The cookie that binds a sign-in to its browser: without it, a callback URL made by an attacker (their own
 * login at the provider, their state) would sign a victim's browser into the attacker's account.
 */
export const BROWSER_COOKIE = 'oidc_browser'
/** A browser's key as this service makes it; any other cookie value is ignored. */
export const isBrowserKey = (value: unknown): value is string => typeof value === 'string' && /^[\w-]{43}$/.test(value)
export const newBrowserKey = () => oidc.randomState()
const browserHash = (key: string) => createHash('sha256').update(key).digest('base64url')

/** What a one-time code stands for: a user to sign in, or the refusal the exchange answers. */
type Outcome =
  | { kind: 'sign_in'; userId: string }
  | { kind: 'account_exists' }
  // Linked only at the exchange, by the user who started it: a link's URL works in any browser.
  | { kind: 'link'; userId: string; provider: string; account: ProviderAccount }

/** Who calls the exchange, from its access token: asked for only when a code would link. */
export type Caller = () => Promise<{ user: { id: string } }>

/** The provider's claims this service uses. */
type ProviderAccount = { subject: string; email: string; emailVerified: boolean; fullName: string }

/** Where the provider sends the browser back: registered at the provider, exactly this string. */
export const callbackUrl = (publicUrl: string, provider: string) => `${publicUrl}/api/users/oauth/${provider}/callback/`

const FULL_NAME_MAX = 250
const SUBJECT_MAX = 255

/**
 * Starts a sign-in from a browser (or the signed-in user's linking of a provider): checks the frontend's
 * redirect URL against OAUTH_REDIRECT_URLS, keeps a fresh state, nonce and PKCE verifier server-side for one
 * use within {@link STATE_SECONDS}, bound to `owner`, and answers the provider's authorization URL.
 */
export async function authorizationUrl(deps: OidcDeps, provider: string, redirectUri: string, client: Client, owner: FlowOwner) {
  const settings = deps.oidcProviders.settings(provider)
  if (!settings) throw OIDC_ERRORS.providerNotFound()
  const allowed = allowedRedirect(deps.config.oidc.redirectUrls, redirectUri)
  if (!allowed) throw OIDC_ERRORS.redirectNotAllowed()
  // Counted before the work: each start holds a state for ten minutes.
  await countAttempt(deps, `oidc:authorize:ip:${client.ip}`, client, 'oidc_authorize')
  const config = await deps.oidcProviders.client(provider)
  const state = oidc.randomState()
  const pending: PendingSignIn = {
    provider,
    redirectUri: allowed,
    nonce: oidc.randomNonce(),
    verifier: oidc.randomPKCECodeVerifier(),
    ...('browser' in owner ? { browser: browserHash(owner.browser) } : { linkUserId: owner.linkUserId }),
  }
  await deps.oidcFlows.put(`state:${state}`, JSON.stringify(pending), STATE_SECONDS)
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callbackUrl(deps.config.publicUrl, provider),
    scope: settings.scopes.join(' '),
    state,
    nonce: pending.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
    code_challenge_method: 'S256',
  })
  return url.href
}

/** The configured redirect URL a requested one names (compared after URL normalisation, whole), or undefined. */
function allowedRedirect(allowed: string[], requested: string) {
  if (!URL.canParse(requested)) return undefined
  const normalised = new URL(requested).href
  return allowed.find((url) => url === normalised)
}

/**
 * The provider's callback. A state that is missing, unknown, used, for another provider or, for a sign-in,
 * brought by a browser without the cookie of the one that started it, is a 400: there is no redirect URL that
 * can be trusted (or, for another browser, that should be used). Otherwise its state is spent and the browser goes
 * back to the frontend's redirect URL with a one-time code (`?code=`), or with `?error=<code>` when the
 * provider refused or any check failed; never a token, an email or a detail.
 */
export async function completeAuthorization(deps: OidcDeps, provider: string, callback: URLSearchParams, client: Client, browser: string | undefined) {
  const state = callback.get('state')
  const stored = state ? await deps.oidcFlows.take(`state:${state}`) : undefined
  if (!state || !stored) throw OIDC_ERRORS.invalidState()
  const pending = JSON.parse(stored) as PendingSignIn
  if (pending.provider !== provider) throw OIDC_ERRORS.invalidState()
  if (pending.browser !== undefined && (browser === undefined || browserHash(browser) !== pending.browser)) throw OIDC_ERRORS.invalidState()
  const back = new URL(pending.redirectUri)
  try {
    const account = await providerAccount(deps, pending, state, callback)
    const outcome = pending.linkUserId ? await linkOutcome(deps, pending.linkUserId, provider, account) : await signInOutcome(deps, provider, account, client)
    const code = oidc.randomState()
    await deps.oidcFlows.put(`code:${code}`, JSON.stringify(outcome), CODE_SECONDS)
    back.searchParams.set('code', code)
  } catch (error) {
    const refusal = asRefusal(error)
    deps.logger.warn({ provider, code: refusal.code, reason: reasonOf(refusal.cause) }, 'sign-in with an identity provider refused')
    deps.metrics.logins.inc({ result: 'failure' })
    back.searchParams.set('error', refusal.code)
  }
  return back.href
}

// Every failure past a valid state goes back to the frontend; what is not the provider's is our own outage.
function asRefusal(error: unknown): CallbackRefusal {
  if (error instanceof CallbackRefusal) return error
  if (error instanceof ServiceError && error.kind === 'unavailable') return new CallbackRefusal('temporarily_unavailable', error)
  throw error
}

/**
 * What failed, for the log, in the library's own words and the provider's error code: never the error
 * itself, whose causes carry the ID token's claims (an email) and the provider's answers.
 */
function reasonOf(cause: unknown) {
  if (!(cause instanceof Error)) return undefined
  const oauthError = (cause as { error?: unknown }).error
  return [cause.name, (cause as { code?: unknown }).code, typeof oauthError === 'string' ? oauthError : undefined, cause.message].filter(Boolean).join(': ')
}

/** The token exchange and every check of its ID token, then the account's claims (from userinfo when the ID token has no email). */
async function providerAccount(deps: OidcDeps, pending: PendingSignIn, state: string, callback: URLSearchParams): Promise<ProviderAccount> {
  const config = await deps.oidcProviders.client(pending.provider).catch((err: unknown) => {
    throw new CallbackRefusal('provider_unavailable', err)
  })
  // The URL the provider redirected to, as registered: openid-client sends it again as redirect_uri.
  const current = new URL(callbackUrl(deps.config.publicUrl, pending.provider))
  for (const [name, value] of callback) current.searchParams.append(name, value)
  const tokens = await oidc
    .authorizationCodeGrant(config, current, {
      pkceCodeVerifier: pending.verifier,
      expectedState: state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    })
    .catch((err: unknown) => {
      throw new CallbackRefusal(grantFailure(err), err)
    })
  const claims = tokens.claims()!
  // OIDC Core caps `sub` at 255 characters, as the identities table does: a longer one is no ID token of a conforming provider.
  if (claims.sub.length > SUBJECT_MAX) throw new CallbackRefusal('invalid_id_token')
  let email = claims.email
  let verified = claims.email_verified
  if (typeof email !== 'string' || email === '') {
    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub).catch((err: unknown) => {
      throw new CallbackRefusal(isUnreachable(err) ? 'provider_unavailable' : 'provider_error', err)
    })
    ;[email, verified] = [info.email, info.email_verified]
  }
  if (typeof email !== 'string' || email.length > 254 || !isEmail(email)) throw new CallbackRefusal('email_required')
  const address = email.toLowerCase()
  return {
    subject: claims.sub,
    email: address,
    // Some providers send the boolean as a string.
    emailVerified: verified === true || verified === 'true',
    fullName: fullNameFrom(claims, address),
  }
}

/** What went wrong in the code exchange, as the redirect says it. */
function grantFailure(err: unknown): CallbackErrorCode {
  if (err instanceof oidc.AuthorizationResponseError) return err.error === 'access_denied' ? 'access_denied' : 'provider_error'
  if (isUnreachable(err)) return 'provider_unavailable'
  if (!(err instanceof oidc.ClientError)) return 'provider_error'
  // The ID token's claims (iss, aud, nonce, exp, iat), its key, or its signature.
  if (['OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'OAUTH_KEY_SELECTION_FAILED'].includes(err.code ?? '')) return 'invalid_id_token'
  const message = err.cause instanceof Error ? err.cause.message : ''
  return /JWT|ID Token/i.test(`${err.message} ${message}`) ? 'invalid_id_token' : 'provider_error'
}

/** The name to show: `name`, else given and family names, else the email's local part; cut to the field's limit. */
function fullNameFrom(claims: oidc.IDToken, email: string) {
  const clean = (value: unknown) => (typeof value === 'string' ? value.toWellFormed().replaceAll('\u0000', '').trim() : '')
  const name = clean(claims.name) || [clean(claims.given_name), clean(claims.family_name)].filter(Boolean).join(' ') || email.split('@')[0]!
  return characterCount(name) <= FULL_NAME_MAX ? name : [...name].slice(0, FULL_NAME_MAX).join('').trim()
}

/**
 * The contract's linking rule. A linked identity signs in its user. An unknown one whose email belongs to
 * an account is linked to it only when both sides have proven the address (the provider says
 * email_verified, the account's own verification says so): otherwise whoever controls that address at
 * a careless provider would take the account over, so the exchange answers `account_exists`. An unknown
 * identity with a new email makes a new user, without a password.
 */
async function signInOutcome(deps: OidcDeps, provider: string, account: ProviderAccount, client: Client, raced = false): Promise<Outcome> {
  const now = new Date(deps.clock.now())
  const identity = await findIdentity(deps.db, provider, account.subject)
  if (identity) {
    await touchIdentity(deps.db, identity, account, now)
    return { kind: 'sign_in', userId: identity.userId }
  }
  const existing = await findUserByEmail(deps.db, account.email)
  if (existing) {
    if (!(account.emailVerified && existing.emailVerified)) return { kind: 'account_exists' }
    await deps.db.transaction((tx) => insertIdentity(tx, existing.id, provider, account, now, client))
    return { kind: 'sign_in', userId: existing.id }
  }
  try {
    const user = await createUser(
      deps,
      { email: account.email, fullName: account.fullName, password: null, emailVerified: account.emailVerified },
      client,
      { detail: { method: OIDC_AMR, provider }, alsoWrite: (tx, user) => insertIdentity(tx, user.id, provider, account, now, client, false) },
    )
    return { kind: 'sign_in', userId: user.id }
  } catch (error) {
    // The email was taken (or the identity made) by a sign-in racing this one: the rule again, on that account.
    if (!raced && (error instanceof FieldErrors || isUniqueViolation(error))) return signInOutcome(deps, provider, account, client, true)
    throw error
  }
}

/**
 * The link flow's callback: refused at once when another user has the identity, else kept for the exchange.
 * Nothing is linked here: whoever opened the link's URL (it is not tied to a browser) may not be the user
 * who asked for it, so the exchange links only for that user's own access token.
 */
async function linkOutcome(deps: OidcDeps, userId: string, provider: string, account: ProviderAccount): Promise<Outcome> {
  const identity = await findIdentity(deps.db, provider, account.subject)
  if (identity && identity.userId !== userId) throw new CallbackRefusal('identity_in_use')
  return { kind: 'link', userId, provider, account }
}

/** The link's exchange: the identity joins the caller, who must be the user who started the link. */
async function completeLink(deps: OidcDeps, link: Extract<Outcome, { kind: 'link' }>, caller: Caller, client: Client) {
  const { user } = await caller()
  if (user.id !== link.userId) throw OIDC_ERRORS.linkNotYours()
  const now = new Date(deps.clock.now())
  const identity = await findIdentity(deps.db, link.provider, link.account.subject)
  if (identity?.userId === link.userId) return touchIdentity(deps.db, identity, link.account, now)
  if (identity) throw OIDC_ERRORS.identityInUse()
  await deps.db
    .transaction(async (tx) => {
      // Serialised with the unlinks and deletion of this user.
      const [row] = await tx.select({ id: users.id }).from(users).where(eq(users.id, link.userId)).for('update')
      if (!row) throw OIDC_ERRORS.invalidCode()
      await insertIdentity(tx, link.userId, link.provider, link.account, now, client)
    })
    .catch((error: unknown) => {
      if (isUniqueViolation(error)) throw OIDC_ERRORS.identityInUse()
      throw error
    })
}

async function findIdentity(db: Database, provider: string, subject: string) {
  const [identity] = await db
    .select()
    .from(userIdentities)
    .where(and(eq(userIdentities.provider, provider), eq(userIdentities.subject, subject)))
  return identity
}

// The email shown in the list follows the provider's latest answer.
async function touchIdentity(db: Database, identity: IdentityRow, account: ProviderAccount, now: Date) {
  await db
    .update(userIdentities)
    .set({ lastUsedAt: now, email: account.email, emailVerified: account.emailVerified })
    .where(eq(userIdentities.id, identity.id))
}

/** Links an identity to a user with its `identity_linked` event (left out for a user it creates: `register` says it). */
async function insertIdentity(tx: Transaction, userId: string, provider: string, account: ProviderAccount, now: Date, client: Client, event = true) {
  await tx.insert(userIdentities).values({
    id: Bun.randomUUIDv7(),
    userId,
    provider,
    subject: account.subject,
    email: account.email,
    emailVerified: account.emailVerified,
    createdAt: now,
    lastUsedAt: now,
  })
  if (event) await recordSecurityEvent(tx, { type: 'identity_linked', userId, actor: self(userId), client, detail: { provider } }, now)
}

/**
 * Exchanges a callback's one-time code (single-use, {@link CODE_SECONDS}) for a session. Exactly what a
 * login answers: an account with a second factor gets the 403 `mfa_required` step, a disabled account is
 * refused, the access token's `amr` says `oidc`. A code whose outcome is `account_exists` answers 409. A link's
 * code links first, for the caller who started the link only (401 without a token, 403 for another user).
 */
export async function exchangeCode(deps: OidcDeps, code: string, client: Client, caller: Caller) {
  const attempt = await countAttempt(deps, `oidc:token:ip:${client.ip}`, client, 'oidc_token')
  const stored = await deps.oidcFlows.take(`code:${code}`)
  if (!stored) throw OIDC_ERRORS.invalidCode()
  await attempt.succeeded()
  const outcome = JSON.parse(stored) as Outcome
  if (outcome.kind === 'account_exists') throw OIDC_ERRORS.accountExists()
  if (outcome.kind === 'link') await completeLink(deps, outcome, caller, client)
  const user = await findUserById(deps.db, outcome.userId)
  // Before the second factor: a disabled account gets no mfa_token.
  if (!user?.isActive) throw new FieldErrors({ non_field_errors: ['This account cannot sign in.'] })
  if (deps.config.recovery.requireEmailVerification && !user.emailVerified) throw AUTH_ERRORS.emailNotVerified()
  const challenge = await deps.secondFactor?.(user.id, OIDC_AMR)
  if (challenge) throw AUTH_ERRORS.mfaRequired(challenge.mfaToken, challenge.methods)
  return finishLogin(deps, user.id, [OIDC_AMR], client)
}

/** Counts an attempt per address (under the login's per-address rule) or throws `throttled`; `succeeded` takes it back. */
async function countAttempt(deps: OidcDeps, key: string, client: Client, limit: string) {
  // A caller in process has no address: nothing to count it under.
  if (!client.ip) return { succeeded: async () => {} }
  const attempt = await deps.limiter.hitAll([{ key, rule: deps.config.limits.loginPerAddress }])
  if (!attempt.allowed) {
    deps.metrics.rateLimited.inc({ limit })
    throw throttled(attempt.retryAfterSeconds)
  }
  return { succeeded: () => deps.limiter.forgive(attempt.id, [key]) }
}

/** What the caller's list shows of an identity. */
const identityBody = (identity: IdentityRow) => ({
  id: identity.id,
  provider: identity.provider,
  email: identity.email,
  created_at: identity.createdAt.toISOString(),
  last_used_at: identity.lastUsedAt?.toISOString() ?? null,
})

/** The caller's linked provider accounts, oldest first. */
export async function listIdentities(deps: Pick<OidcDeps, 'db'>, userId: string) {
  const rows = await deps.db.select().from(userIdentities).where(eq(userIdentities.userId, userId)).orderBy(asc(userIdentities.createdAt), asc(userIdentities.id))
  return rows.map(identityBody)
}

/**
 * Unlinks one of the caller's identities, unless it is the last way into the account: no usable password,
 * no other identity and no passkey (which signs in alone) would leave it reachable only by a password reset.
 */
export async function unlinkIdentity(deps: Pick<OidcDeps, 'db' | 'clock'>, userId: string, id: string, client: Client) {
  const now = new Date(deps.clock.now())
  await deps.db.transaction(async (tx) => {
    // The user's row serialises unlinks: two racing for the last two identities each see what the other left.
    const [user] = await tx.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, userId)).for('update')
    const [removed] = await tx
      .delete(userIdentities)
      .where(and(eq(userIdentities.id, id), eq(userIdentities.userId, userId)))
      .returning()
    // Another user's identity is as unknown as a missing one.
    if (!user || !removed) throw OIDC_ERRORS.identityNotFound()
    if (isUnusable(user.passwordHash) && !(await hasOtherSignIn(tx, userId))) throw OIDC_ERRORS.lastSignInMethod()
    await recordSecurityEvent(tx, { type: 'identity_unlinked', userId, actor: self(userId), client, detail: { provider: removed.provider } }, now)
  })
}

async function hasOtherSignIn(tx: Transaction, userId: string) {
  const [[identities], [passkeys]] = await Promise.all([
    tx.select({ n: count() }).from(userIdentities).where(eq(userIdentities.userId, userId)),
    tx
      .select({ n: count() })
      .from(mfaFactors)
      .where(and(eq(mfaFactors.userId, userId), eq(mfaFactors.type, 'passkey'), isNotNull(mfaFactors.confirmedAt))),
  ])
  return (identities?.n ?? 0) > 0 || (passkeys?.n ?? 0) > 0
}

function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, cause } = error as { code?: unknown; cause?: unknown }
  return code === '23505' || isUniqueViolation(cause)
}
