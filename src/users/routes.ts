import { Elysia, t } from 'elysia'
import { authGuard, type GuardDeps } from '../auth/guard'
import type { TokenClaims } from '../auth/tokens'
import { ApiError, ErrorBody, FieldErrorsBody } from '../errors'
import { toUserBody, trimNameAndEmail, UpdateBody, User, UserIdParams } from './model'
import { deleteUser, findUserById, updateUser, type UsersDeps } from './service'
import type { UserRow } from './table'

const authErrors = { 401: ErrorBody }

/** The caller's own record, other users' records, and account deletion. */
export const usersRoutes = (deps: UsersDeps & GuardDeps) => {
  // A password change ends every other session; the caller's own continues.
  const update = ({ user, claims, body }: { user: UserRow; claims: TokenClaims; body: UpdateBody }) =>
    updateUser(deps, user, body, () => deps.sessions.endAllForUser(user.id, { except: claims.sid })).then((updated) =>
      toUserBody(updated, true),
    )

  const updateOptions = {
    auth: true,
    transform: ({ body }: { body: unknown }) => trimNameAndEmail(body),
    body: UpdateBody,
    response: { 200: User, 400: FieldErrorsBody, ...authErrors, 503: ErrorBody },
    detail: { summary: 'Change your email, name or password (email and password need current_password)' },
  } as const

  return new Elysia({ prefix: '/api/users', tags: ['users'] })
    .use(authGuard(deps))
    .get('/me', ({ user }) => toUserBody(user, true), {
      auth: true,
      response: { 200: User, ...authErrors },
      detail: { summary: 'The caller (every other service calls this to authenticate a request)' },
    })
    .put('/update', update, updateOptions)
    .patch('/update', update, updateOptions)
    .get(
      '/:id',
      async ({ user, params }) => {
        const found = params.id === user.id ? user : await findUserById(deps.db, params.id)
        if (!found) throw userNotFound()
        return toUserBody(found, found.id === user.id || user.isAdmin)
      },
      {
        auth: true,
        params: UserIdParams,
        response: { 200: User, 404: ErrorBody, ...authErrors },
        detail: { summary: "A user's record (the email only for yourself or an admin)" },
      },
    )
    .delete(
      '/:id',
      async ({ user, params, set }) => {
        // Non-admins learn nothing about other ids: always 403, never 404.
        if (params.id !== user.id && !user.isAdmin)
          throw new ApiError(403, 'permission_denied', 'You do not have permission to perform this action.')
        if (!(await deleteUser(deps, params.id, () => deps.sessions.endAllForUser(params.id)))) throw userNotFound()
        set.status = 204
      },
      {
        auth: true,
        params: UserIdParams,
        response: { 204: t.Void(), 403: ErrorBody, 404: ErrorBody, ...authErrors },
        detail: { summary: 'Delete an account (your own, or any as an admin)' },
      },
    )
}

const userNotFound = () => new ApiError(404, 'user_not_found', 'User not found.')
