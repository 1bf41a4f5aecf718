import { t } from 'elysia'
import { text } from '../http/formats'

const currentPassword = text({ minLength: 1, maxLength: 128 })
const name = t.Optional(text({ minLength: 1, maxLength: 64, description: 'What the list calls it, e.g. "Phone" or "YubiKey"' }))
const code = text({ minLength: 1, maxLength: 64, description: 'A 6-digit TOTP code, or a recovery code (case, spaces and dashes do not matter)' })

export const FactorIdParams = t.Object({ id: t.String({ format: 'uuid' }) })

export const CurrentPasswordBody = t.Object({ current_password: currentPassword })
export const EnrolBody = t.Object({ current_password: currentPassword, name })
export const CodeBody = t.Object({ code })
export const MfaLoginBody = t.Object({ mfa_token: text({ minLength: 1, maxLength: 128 }), code })

export const Factor = t.Object({
  id: t.String({ format: 'uuid' }),
  type: t.Union([t.Literal('totp'), t.Literal('passkey')]),
  name: t.String(),
  created_at: t.String({ format: 'date-time' }),
  last_used_at: t.Union([t.String({ format: 'date-time' }), t.Null()]),
})

export const FactorList = t.Object({ factors: t.Array(Factor), recovery_codes_left: t.Integer() })
export const Enrolment = t.Object({
  id: t.String({ format: 'uuid' }),
  secret: t.String({ description: 'Base32, for typing into an app' }),
  otpauth_url: t.String({ description: 'otpauth://totp/... for a QR code' }),
})
const recoveryCodes = t.Array(t.String(), { description: 'Shown once: each works once, in place of a TOTP code' })
export const RecoveryCodes = t.Object({ recovery_codes: recoveryCodes })
export const RegisteredPasskey = t.Composite([Factor, RecoveryCodes])

const b64 = (maxLength: number) => t.String({ maxLength, pattern: '^[A-Za-z0-9_-]*={0,2}$' })
const extensions = t.Optional(t.Record(t.String(), t.Unknown()))
const attachment = t.Optional(t.Union([t.Literal('platform'), t.Literal('cross-platform')]))

/** What `navigator.credentials.create` answers, as JSON (`PublicKeyCredential.toJSON()`, or @simplewebauthn/browser's startRegistration). */
export const RegistrationCredential = t.Object({
  id: b64(1366),
  rawId: b64(1366),
  type: t.Literal('public-key'),
  response: t.Object({
    clientDataJSON: b64(8192),
    attestationObject: b64(65536),
    transports: t.Optional(t.Array(t.String({ maxLength: 32 }), { maxItems: 10 })),
  }),
  clientExtensionResults: extensions,
  authenticatorAttachment: attachment,
})

/** What `navigator.credentials.get` answers, as JSON. */
export const AuthenticationCredential = t.Object({
  id: b64(1366),
  rawId: b64(1366),
  type: t.Literal('public-key'),
  response: t.Object({
    clientDataJSON: b64(8192),
    authenticatorData: b64(8192),
    // Post-quantum signatures (ML-DSA, which Chromium offers) run to a few kilobytes.
    signature: b64(16384),
    userHandle: t.Optional(b64(128)),
  }),
  clientExtensionResults: extensions,
  authenticatorAttachment: attachment,
})

export const PasskeyRegisterBody = t.Object({ credential: RegistrationCredential, name })
export const PasskeyLoginBody = t.Object({ credential: AuthenticationCredential })
// The library's own option shapes, passed through to the browser as they are.
export const WebAuthnOptions = t.Record(t.String(), t.Unknown(), { description: 'PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON' })
