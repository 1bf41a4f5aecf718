import { Secret, TOTP } from 'otpauth'

/** RFC 6238 as the contract fixes it: SHA-1, 6 digits, 30-second steps, one step of drift either way. */
const PERIOD = 30
const DRIFT_STEPS = 1

const totp = (secret: string, issuer = '', label = '') =>
  new TOTP({ issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) })

/** A new 160-bit secret (RFC 4226's recommended length), base32 as authenticator apps take it. */
export const newTotpSecret = () => new Secret({ size: 20 }).base32

/** The `otpauth://totp/...` URL an authenticator app reads from a QR code. */
export const otpauthUrl = (secret: string, issuer: string, account: string) => totp(secret, issuer, account).toString()

/**
 * The time step a code belongs to, when it is right for `now` or one step either side; otherwise null.
 * The caller refuses a step it has already accepted, so a code works once.
 */
export function matchingStep(secret: string, code: string, now: number): number | null {
  if (!/^\d{6}$/.test(code)) return null
  const delta = totp(secret).validate({ token: code, timestamp: now, window: DRIFT_STEPS })
  return delta === null ? null : Math.floor(now / 1000 / PERIOD) + delta
}
