import { Elysia } from 'elysia'
import { ApiError, unauthorized } from '../errors'
import type { SessionStore } from '../sessions/store'
import type { UserCache } from '../users/cache'
import { tokenNotValid, unknownUser, userInactive } from './service'
import type { Tokens } from './tokens'

// The old fleet sends `JWT <token>` (simplejwt's AUTH_HEADER_TYPES); `Bearer` is the standard.
const AUTHORIZATION = /^(?:JWT|Bearer) +([\w-]+\.[\w-]+\.[\w-]*)$/i

export const bearerToken = (header: string | undefined) => header?.match(AUTHORIZATION)?.[1]

export type GuardDeps = { tokens: Tokens; sessions: SessionStore; userCache: Pick<UserCache, 'get'> }

/**
 * The `auth: true` route option: resolves the caller's user and token claims, or answers 401 (503 without
 * the session store). `admin: true` does the same and then answers 403 `permission_denied` to a non-admin.
 */
export const authGuard = ({ tokens, sessions, userCache }: GuardDeps) => {
  const authenticate = async (authorization: string | undefined) => {
    const token = bearerToken(authorization)
    if (!token) throw unauthorized('Authentication credentials were not provided.', 'not_authenticated')
    const claims = await tokens.verify(token, 'access')
    if (!claims) throw unauthorized('Given token not valid for any token type', 'token_not_valid')
    // One round trip to the session store, in parallel with the user lookup (usually from memory).
    const [active, user] = await Promise.all([sessions.isActive(claims.sid), userCache.get(claims.user_id)])
    if (!active) throw tokenNotValid()
    if (!user) throw unknownUser()
    if (!user.isActive) throw userInactive()
    return { user, claims }
  }
  return new Elysia().macro({
    auth: {
      // The spec's lock on exactly the routes that need a token (the scheme is declared in docs.ts).
      detail: { security: [{ JWT: [] }] },
      resolve: ({ headers }) => authenticate(headers.authorization),
    },
    admin: {
      detail: { security: [{ JWT: [] }] },
      async resolve({ headers }) {
        const caller = await authenticate(headers.authorization)
        // Read from the same invalidated cache: a revoked admin loses the rights on every instance at once.
        if (!caller.user.isAdmin) throw permissionDenied()
        return caller
      },
    },
  })
}

/** DRF's answer to an authenticated caller who may not do this. */
export const permissionDenied = () => new ApiError(403, 'permission_denied', 'You do not have permission to perform this action.')
