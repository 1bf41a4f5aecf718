/**
 * Verifies password hashes written by Django's `make_password`, so users
 * imported from the old Django service can log in with their old password.
 *
 * The password is verified exactly as given: stripping whitespace is the
 * caller's job. Anything unusable, unknown or malformed never matches and
 * never throws, so a bad row cannot be turned into a login or a 500.
 */
import { createHash, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

type Verifier = (password: string) => Promise<boolean>

// The async form runs on Bun's thread pool; pbkdf2Sync at 870 000 iterations
// would stall every other request for a noticeable time.
const pbkdf2Async = promisify(pbkdf2)

// Node rejects iteration counts above 2^31 - 1; catching that here keeps
// malformed rows out of the crypto call.
const MAX_PBKDF2_ITERATIONS = 2 ** 31 - 1

const PBKDF2 = /^(pbkdf2_sha256|pbkdf2_sha1)\$([1-9][0-9]*)\$([^$]+)\$([A-Za-z0-9+/]+={0,2})$/
// Django stores "argon2" followed by the PHC string (which starts with "$").
// Django < 3.2 wrote argon2i, later versions argon2id; both may be in old rows.
const ARGON2 = /^argon2(\$argon2(?:id|i)\$v=19\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+)$/
// $2a$/$2b$/$2y$ are the same algorithm; $2x$ is crypt_blowfish's buggy one.
const BCRYPT = /^(bcrypt|bcrypt_sha256)\$(\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53})$/

// Bcrypt only reads 72 bytes, and Django's bcrypt hasher silently ignored the
// rest. Bun instead pre-hashes longer passwords with SHA-512, which would lock
// out those users, so we cut the UTF-8 bytes ourselves.
const BCRYPT_MAX_BYTES = 72

const DIGEST_BY_ALGORITHM = {
  pbkdf2_sha256: 'sha256',
  pbkdf2_sha1: 'sha1',
} as const
const KEY_LENGTH_BY_DIGEST = { sha256: 32, sha1: 20 } as const

/** True for the Django hash formats this module verifies, and for unusable passwords. */
export function isDjangoHash(encoded: string): boolean {
  return isUnusable(encoded) || parse(encoded) !== null
}

/**
 * The check for a Django-encoded hash of a format this module verifies; null for an unusable password or
 * an unknown or malformed hash, which the caller must still spend time on (see passwords.ts).
 */
export function djangoVerifier(encoded: string): Verifier | null {
  return isUnusable(encoded) ? null : parse(encoded)
}

/** Checks a password against a Django-encoded hash; false for anything that does not match. */
export async function verifyDjangoPassword(password: string, encoded: string): Promise<boolean> {
  const verify = djangoVerifier(encoded)
  if (verify === null) return false
  try {
    return await verify(password)
  } catch {
    return false
  }
}

// make_password(None) stores "!" plus random characters: the account has no password.
export function isUnusable(encoded: string): boolean {
  return encoded.startsWith('!')
}

/** Django's make_password(None): "!" and 40 random characters, which no password ever verifies. */
export function unusablePassword(): string {
  return `!${randomBytes(30).toString('base64url')}`
}

function parse(encoded: string): Verifier | null {
  return parsePbkdf2(encoded) ?? parseArgon2(encoded) ?? parseBcrypt(encoded)
}

function parsePbkdf2(encoded: string): Verifier | null {
  const match = PBKDF2.exec(encoded)
  if (!match) return null
  const [, algorithm, iterationText, salt, expected] = match
  const iterations = Number(iterationText)
  if (iterations > MAX_PBKDF2_ITERATIONS) return null
  const digest = DIGEST_BY_ALGORITHM[algorithm as keyof typeof DIGEST_BY_ALGORITHM]
  return async (password) => {
    const key = await pbkdf2Async(password, salt!, iterations, KEY_LENGTH_BY_DIGEST[digest], digest)
    // Like Django, compare the canonical base64 text: a non-canonical or
    // tampered hash then simply does not match.
    return constantTimeEqual(key.toString('base64'), expected!)
  }
}

function parseArgon2(encoded: string): Verifier | null {
  const phc = ARGON2.exec(encoded)?.[1]
  if (phc === undefined) return null
  // Bun.password reads Django's unpadded PHC string as is, at m=102400, p=8.
  return (password) => Bun.password.verify(password, phc)
}

function parseBcrypt(encoded: string): Verifier | null {
  const match = BCRYPT.exec(encoded)
  if (!match) return null
  const [, algorithm, hash] = match
  if (algorithm === 'bcrypt_sha256') {
    // Django feeds bcrypt the 64-character hex SHA-256 digest so that long
    // passwords are not truncated.
    return (password) => Bun.password.verify(sha256Hex(password), hash!, 'bcrypt')
  }
  return (password) => Bun.password.verify(first72Bytes(password), hash!, 'bcrypt')
}

function sha256Hex(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex')
}

function first72Bytes(password: string): Uint8Array {
  return new TextEncoder().encode(password).subarray(0, BCRYPT_MAX_BYTES)
}

// timingSafeEqual throws on different lengths; the length of a derived key is
// public (fixed per algorithm), so checking it first leaks nothing.
function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}
