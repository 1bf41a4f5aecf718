import { Elysia } from 'elysia'
import type { SessionStore } from '../sessions/store'
import type { UserCache } from './cache'
import { SESSION_ERRORS } from '../sessions/errors'
import type { Tokens } from '../sessions/tokens'
import { USER_ERRORS } from './errors'

// The old fleet sends `JWT <token>` (simplejwt's AUTH_HEADER_TYPES); `Bearer` is the standard.
const AUTHORIZATION = /^(?:JWT|Bearer) +([\w-]+\.[\w-]+\.[\w-]*)$/i

export const bearerToken = (header: string | undefined) => header?.match(AUTHORIZATION)?.[1]

export type GuardDeps = { tokens: Tokens; sessions: SessionStore; userCache: Pick<UserCache, 'get' | 'peek'> }

/**
 * The `auth: true` route option: resolves the caller's user and token claims, or answers 401 (503 without
 * the session store). `admin: true` does the same and then answers 403 `permission_denied` to a non-admin.
 */
export const authGuard = (deps: GuardDeps) => {
  const authenticate = authenticator(deps)
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
        if (!caller.user.isAdmin) throw USER_ERRORS.permissionDenied()
        return caller
      },
    },
  })
}

/** The caller's user and token claims from an Authorization header, or the 401 (503 without the session store) to answer. */
export const authenticator =
  ({ tokens, sessions, userCache }: GuardDeps) =>
  async (authorization: string | undefined) => {
    const token = bearerToken(authorization)
    if (!token) throw SESSION_ERRORS.notAuthenticated()
    // HS256 verifies without a promise: on this path every await is a turn of the event loop.
    const claims = tokens.verifySync ? tokens.verifySync(token, 'access') : await tokens.verify(token, 'access')
    if (!claims) throw SESSION_ERRORS.accessTokenNotValid()
    // One round trip to the session store; the user usually comes from memory, else from the database meanwhile.
    const active = sessions.isActive(claims.user_id, claims.sid)
    const user = userCache.peek(claims.user_id) ?? (await Promise.all([active, userCache.get(claims.user_id)]))[1]
    if (!(await active)) throw SESSION_ERRORS.tokenNotValid()
    if (!user) throw SESSION_ERRORS.unknownUser()
    if (!user.isActive) throw SESSION_ERRORS.userInactive()
    return { user, claims }
  }
