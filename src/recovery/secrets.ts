import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

/** A link token: 256 random bits, URL-safe. */
export const newToken = () => randomBytes(32).toString('base64url')

/** A 6-digit code, uniformly drawn. */
export const newCode = () => String(randomInt(0, 1_000_000)).padStart(6, '0')

/** What is stored of a token: enough to find it, nothing to use it. */
export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex')

// Keyed, and bound to its row: a million possible codes would fall to a plain hash read from a leaked table.
export const codeHash = (secret: string, tokenId: string, code: string) =>
  createHmac('sha256', secret).update(`${tokenId}:${code}`).digest('hex')

/** Compares two hex digests of equal length in constant time. */
export const sameDigest = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))
