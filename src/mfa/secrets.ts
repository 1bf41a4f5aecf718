import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

// The key's own purpose: the same SECRET_KEY signs tokens, and a derived key for another use shares nothing with it.
const HKDF_INFO = 'users-service mfa totp-secret aes-256-gcm v1'

/** An AES-256-GCM key for TOTP secrets, derived from the configured secret (MFA_ENCRYPTION_KEY or SECRET_KEY) with HKDF-SHA256. */
export const encryptionKey = (secret: string) => Buffer.from(hkdfSync('sha256', secret, '', HKDF_INFO, 32))

/**
 * Encrypts a TOTP secret for the row `factorId`: 12-byte IV, 16-byte tag, ciphertext, base64url. The factor's
 * id is the associated data, so a ciphertext copied onto another row does not decrypt.
 */
export function encryptSecret(key: Buffer, factorId: string, plain: string) {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(factorId))
  const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')
}

export function decryptSecret(key: Buffer, factorId: string, stored: string) {
  const bytes = Buffer.from(stored, 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12)).setAAD(Buffer.from(factorId))
  decipher.setAuthTag(bytes.subarray(12, 28))
  return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8')
}

// Crockford-like: no 0/O or 1/I/L to misread from paper.
const CODE_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'
export const RECOVERY_CODE_COUNT = 10

/** A recovery code: 16 characters from 31 (79 bits), shown as xxxx-xxxx-xxxx-xxxx. */
export function newRecoveryCode() {
  const chars = [...randomBytes(32)].filter((byte) => byte < 248).map((byte) => CODE_ALPHABET[byte % 31]!)
  // 248 = 8 × 31: rejecting the rest keeps every character equally likely; 32 bytes leave well over 16.
  const code = chars.slice(0, 16).join('')
  return code.match(/.{4}/g)!.join('-')
}

/** What a typed code is compared as: case, spaces and dashes do not matter. */
export const normalizeRecoveryCode = (code: string) => code.toLowerCase().replace(/[\s-]/g, '')

/** A recovery code's stored digest: the codes are random enough that a plain hash cannot be reversed. */
export const recoveryCodeHash = (code: string) => sha256(normalizeRecoveryCode(code))

/** A random single-use secret (an mfa_token, a WebAuthn challenge is made by the library). */
export const newSecret = () => randomBytes(32).toString('base64url')

export const sha256 = (value: string) => createHash('sha256').update(value).digest('hex')
