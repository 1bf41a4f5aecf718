import type { TokenPair } from './types'

/** A token's claims, read without verification: the client only needs to know when it expires and whose session it is. */
function claimsOf(token: string): Record<string, unknown> | null {
  try {
    const claims = JSON.parse(atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')))
    return claims && typeof claims === 'object' ? claims : null
  } catch {
    return null
  }
}

/** The token's `exp` claim, or null. */
export function expiryOf(token: string): number | null {
  const exp = claimsOf(token)?.exp
  return typeof exp === 'number' ? exp : null
}

/** The session a pair belongs to: its `sid`, which every rotation keeps (the refresh token itself for one without). */
export function sessionOf(pair: TokenPair): string {
  const sid = claimsOf(pair.refresh)?.sid
  return typeof sid === 'string' ? sid : pair.refresh
}

/** Whether two pairs are of one session, however often it was refreshed in between. */
export const sameSession = (a: TokenPair | null, b: TokenPair | null) => a !== null && b !== null && sessionOf(a) === sessionOf(b)
