import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { and, eq, isNotNull } from 'drizzle-orm'
import type { Client } from '../http/client'
import type { UserRow } from '../users/table'
import { consumeChallenge, storeChallenge } from './challenges'
import { ServiceError } from '../errors'
import { MFA_ERRORS } from './errors'
import { checkPassword, factorBody, factorEnabled, finishLogin, type MfaDeps } from './service'
import { mfaFactors } from './table'

/** A credential as it arrives: the browser may leave out the extension results, and its transports are plain strings. */
type WireCredential<T extends { clientExtensionResults: unknown; response: object }> = Omit<T, 'clientExtensionResults' | 'response'> & {
  clientExtensionResults?: object
  response: { [K in keyof T['response']]: T['response'][K] extends string[] | undefined ? string[] | undefined : T['response'][K] }
}

/** A malformed or forged answer is the client's error (the library throws on it); a database that fails is not. */
function refused(error: unknown): null {
  for (let cause = error; cause instanceof Error; cause = cause.cause) if (cause instanceof ServiceError) throw error
  return null
}

// A passkey signs in alone, without the password: the authenticator must verify its user (PIN, biometrics).
const USER_VERIFICATION = 'required'

const relyingParty = (deps: Pick<MfaDeps, 'config'>) => ({ expectedOrigin: deps.config.mfa.origins, expectedRPID: deps.config.mfa.rpId })

/**
 * The options for `navigator.credentials.create`, after the current password (every enrolment needs it).
 * The challenge is kept server-side, bound to the caller, for one use within five minutes.
 */
export async function passkeyRegistrationOptions(deps: MfaDeps, caller: UserRow, currentPassword: string) {
  const user = await checkPassword(deps, caller, currentPassword)
  const existing = await deps.db
    .select({ id: mfaFactors.credentialId, transports: mfaFactors.transports })
    .from(mfaFactors)
    .where(and(eq(mfaFactors.userId, user.id), isNotNull(mfaFactors.credentialId)))
  const options = await generateRegistrationOptions({
    rpName: deps.config.mfa.rpName,
    rpID: deps.config.mfa.rpId,
    userName: user.email,
    userDisplayName: user.fullName,
    // The user handle a discoverable credential returns at sign-in: the account's id, never its email.
    userID: Buffer.from(user.id.replaceAll('-', ''), 'hex'),
    attestationType: 'none',
    // One passkey per authenticator: the browser refuses to make a second on one that already has one.
    excludeCredentials: existing.map((credential) => ({ id: credential.id!, transports: credential.transports ?? undefined })),
    authenticatorSelection: { residentKey: 'required', userVerification: USER_VERIFICATION },
  })
  await storeChallenge(deps.db, 'passkey_register', options.challenge, user.id, deps.clock.now())
  return { ...options }
}

/** Stores the authenticator's new credential as a factor; answers it and a new set of recovery codes, as a TOTP confirmation does. */
export async function registerPasskey(
  deps: MfaDeps,
  user: UserRow,
  credential: WireCredential<RegistrationResponseJSON>,
  client: Client,
  name = 'Passkey',
) {
  const now = deps.clock.now()
  const verification = await verifyRegistrationResponse({
    response: { ...credential, clientExtensionResults: credential.clientExtensionResults ?? {} } as RegistrationResponseJSON,
    // The challenge the authenticator signed, spent here: a second answer to it, or someone else's, fails.
    expectedChallenge: (challenge) => consumeChallenge(deps.db, 'passkey_register', challenge, now, user.id),
    ...relyingParty(deps),
    requireUserVerification: true,
  }).catch(refused)
  if (!verification?.verified) throw MFA_ERRORS.passkeyRefused()
  const { credential: made } = verification.registrationInfo
  return deps.db.transaction(async (tx) => {
    const [factor] = await tx
      .insert(mfaFactors)
      .values({
        id: Bun.randomUUIDv7(),
        userId: user.id,
        type: 'passkey',
        name,
        confirmedAt: new Date(now),
        createdAt: new Date(now),
        credentialId: made.id,
        publicKey: Buffer.from(made.publicKey).toString('base64url'),
        signCount: made.counter,
        transports: made.transports ?? null,
      })
      // A credential already registered (to anyone) is not registered again.
      .onConflictDoNothing({ target: mfaFactors.credentialId })
      .returning()
    if (!factor) throw MFA_ERRORS.passkeyRefused()
    return { ...factorBody(factor), recovery_codes: await factorEnabled(tx, user, 'passkey', now, client) }
  })
}

/** The options for `navigator.credentials.get`: no account named (the authenticator offers its passkeys for this site). */
export async function passkeyLoginOptions(deps: MfaDeps) {
  const options = await generateAuthenticationOptions({ rpID: deps.config.mfa.rpId, userVerification: USER_VERIFICATION })
  await storeChallenge(deps.db, 'passkey_login', options.challenge, null, deps.clock.now())
  return { ...options }
}

/** Signs in with a passkey's answer: a session with `amr: ["webauthn"]`, no password asked. */
export async function loginWithPasskey(deps: MfaDeps, credential: WireCredential<AuthenticationResponseJSON>, client: Client) {
  const now = deps.clock.now()
  const [factor] = await deps.db
    .select()
    .from(mfaFactors)
    .where(and(eq(mfaFactors.credentialId, credential.id), eq(mfaFactors.type, 'passkey')))
  if (!factor) throw MFA_ERRORS.passkeyRefused()
  const verification = await verifyAuthenticationResponse({
    response: { ...credential, clientExtensionResults: credential.clientExtensionResults ?? {} } as AuthenticationResponseJSON,
    expectedChallenge: (challenge) => consumeChallenge(deps.db, 'passkey_login', challenge, now),
    ...relyingParty(deps),
    credential: {
      id: factor.credentialId!,
      publicKey: Buffer.from(factor.publicKey!, 'base64url'),
      counter: factor.signCount ?? 0,
      transports: factor.transports ?? undefined,
    },
    requireUserVerification: true,
  }).catch(refused)
  if (!verification?.verified) throw MFA_ERRORS.passkeyRefused()
  await deps.db
    .update(mfaFactors)
    .set({ signCount: verification.authenticationInfo.newCounter, lastUsedAt: new Date(now) })
    .where(eq(mfaFactors.id, factor.id))
  return finishLogin(deps, factor.userId, ['webauthn'], client)
}
