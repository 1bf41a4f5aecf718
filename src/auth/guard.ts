import { Elysia } from 'elysia'
import type { Database } from '../db'
import { unauthorized } from '../errors'
import { findUserById } from '../users/service'
import type { Tokens } from './tokens'

// The old fleet sends `JWT <token>` (simplejwt's AUTH_HEADER_TYPES); `Bearer` is the standard.
const AUTHORIZATION = /^(?:JWT|Bearer) +([\w-]+\.[\w-]+\.[\w-]*)$/i

export const bearerToken = (header: string | undefined) => header?.match(AUTHORIZATION)?.[1]

/** The `auth: true` route option: resolves the caller's user and token claims, or answers 401. */
export const authGuard = ({ db, tokens }: { db: Database; tokens: Tokens }) =>
  new Elysia().macro({
    auth: {
      async resolve({ headers }) {
        const token = bearerToken(headers.authorization)
        if (!token) throw unauthorized('Authentication credentials were not provided.', 'not_authenticated')
        const claims = await tokens.verify(token, 'access')
        if (!claims) throw unauthorized('Given token not valid for any token type', 'token_not_valid')
        const user = await findUserById(db, claims.user_id)
        if (!user) throw unauthorized('User not found', 'user_not_found')
        return { user, claims }
      },
    },
  })
