import type { Routes } from './routes'

// Every body and answer below is read from the server's routes, never written out by hand.
type Users = Routes['api']['users']
type SuccessStatus = 200 | 201 | 202 | 204

/** What a route answers on success. */
export type Success<Route> = Route extends { response: infer Answers } ? Answers[Extract<keyof Answers, SuccessStatus>] : never
/** What a route takes as its body. */
export type BodyOf<Route> = Route extends { body: infer Body } ? Body : never
/** What a route takes as its query string. */
export type QueryOf<Route> = Route extends { query: infer Query } ? Query : never

export type TokenPair = Success<Users['login']['post']>
export type RegisterBody = BodyOf<Users['register']['post']>
export type LoginBody = BodyOf<Users['login']['post']>
export type LoginMfaBody = BodyOf<Users['login']['mfa']['post']>
/** The caller's own User, `email` and `email_verified` included. */
export type User = Success<Users['me']['get']>
export type ProfileUpdate = BodyOf<Users['update']['patch']>
export type PublicUser = Success<Users[':id']['get']>
export type DirectoryQuery = QueryOf<Users['get']>
export type DirectoryPage = Success<Users['get']>
export type Session = Success<Users['sessions']['get']>[number]
export type SecurityLogQuery = QueryOf<Users['me']['security-log']['get']>
export type SecurityLogPage = Success<Users['me']['security-log']['get']>
export type PasswordResetConfirmBody = BodyOf<Users['password']['reset']['confirm']['post']>
export type EmailVerifyBody = BodyOf<Users['email']['verify']['post']>
export type Accepted = Success<Users['password']['reset']['post']>
export type MfaFactors = Success<Users['mfa']['get']>
export type TotpEnrolment = Success<Users['mfa']['totp']['post']>
export type RecoveryCodes = Success<Users['mfa']['recovery-codes']['post']>
export type PasskeyRegistrationOptions = Success<Users['passkeys']['register']['options']['post']>
/** The WebAuthn registration answer: what `@simplewebauthn/browser`'s `startRegistration` returns. */
export type PasskeyRegistrationBody = BodyOf<Users['passkeys']['register']['post']>
export type Passkey = Success<Users['passkeys']['register']['post']>
export type PasskeyLoginOptions = Success<Users['passkeys']['login']['options']['post']>
/** The WebAuthn authentication answer: what `@simplewebauthn/browser`'s `startAuthentication` returns. */
export type PasskeyLoginBody = BodyOf<Users['passkeys']['login']['post']>
/** A provider account linked to the caller (OIDC). */
export type Identity = Success<Users['identities']['get']>[number]
/** Where to send the browser to link a provider: `{authorization_url}`. */
export type LinkStart = Success<Users['identities'][':provider']['post']>
/** An account as the admin API shows it: `email`, `email_verified`, `is_active`, `is_admin`, `date_joined`, `last_login`. */
export type AdminUser = Success<Users['admin']['users'][':id']['enable']['post']>
export type AdminUsersQuery = QueryOf<Users['admin']['users']['get']>
export type AdminUsersPage = Success<Users['admin']['users']['get']>
export type AuditQuery = QueryOf<Users['admin']['audit']['get']>
export type AuditPage = Success<Users['admin']['audit']['get']>
/** A sign-in's 403 `mfa_required`: the token for the second step and the methods that can take it. */
export type MfaRequired = { mfa_token: string; methods: NonNullable<Users['login']['post']['response'][403]['methods']> }
