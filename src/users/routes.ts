import { Elysia, t } from 'elysia'
import { authGuard, type GuardDeps } from '../auth/guard'
import type { TokenClaims } from '../auth/tokens'
import type { ServiceConfig } from '../deps'
import { ApiError, ErrorBody, FieldErrorsBody } from '../errors'
import type { Metrics } from '../metrics'
import type { RateLimiter } from '../sessions/rate-limiter'
import { listUsers } from './directory'
import { toUserBody, trimNameAndEmail, UpdateBody, User, UserIdParams, type UserBody } from './model'
import { pictureLimits, readPicture } from './picture'
import { deleteUser, findUserById, updateUser, type UsersDeps } from './service'
import type { UserRow } from './table'

const authErrors = { 401: ErrorBody, 503: ErrorBody }

const Page = t.Object(
  {
    count: t.Integer(),
    next: t.Union([t.String({ description: 'Absolute URL' }), t.Null()]),
    previous: t.Union([t.String({ description: 'Absolute URL' }), t.Null()]),
    results: t.Array(User),
  },
  { description: "DRF's page shape" },
)

const DirectoryParams = t.Object({
  ids: t.Optional(t.String({ description: 'Comma-separated user ids (at most 100): all of them in one page' })),
  search: t.Optional(t.String({ maxLength: 100, description: 'Matches the start of any word of the name' })),
  // Strings checked by pattern: a coerced number's range error would not name its field.
  page: t.Optional(t.String({ pattern: '^[1-9][0-9]{0,8}$', error: 'A valid page number is required.' })),
  page_size: t.Optional(t.String({ pattern: '^([1-9][0-9]?|100)$', error: 'A whole number from 1 to 100 is required.' })),
})

/** The caller's own record, other users' records and the directory, profile updates, and account deletion. */
export const usersRoutes = (
  deps: UsersDeps & GuardDeps & { config: ServiceConfig; limiter: RateLimiter; metrics: Pick<Metrics, 'sessionsEnded' | 'rateLimited'> },
) => {
  const present = (user: UserRow, withEmail: boolean) => toUserBody(user, withEmail, deps.files)
  // GET /me and /{id} answer from the guard's cached rows: a row changes only by being replaced, so each
  // row's two bodies are built once and live as long as the row does.
  const bodies = new WeakMap<UserRow, { own?: UserBody; public?: UserBody }>()
  const presentCached = (user: UserRow, withEmail: boolean) => {
    let entry = bodies.get(user)
    if (!entry) bodies.set(user, (entry = {}))
    return withEmail ? (entry.own ??= present(user, true)) : (entry.public ??= present(user, false))
  }

  // A password change ends every other session; the caller's own continues.
  const update = async ({ user: cached, claims, body }: { user: UserRow; claims: TokenClaims; body: UpdateBody }) => {
    // The current password is checked against the stored hash, never a cached copy.
    const user = await findUserById(deps.db, cached.id)
    if (!user) throw userNotFound()
    const picture = await readPicture(body.profile_pic, user.id, pictureLimits(deps.config))
    const endOtherSessions = async () =>
      deps.metrics.sessionsEnded.inc({ reason: 'password_change' }, await deps.sessions.endAllForUser(user.id, { except: claims.sid }))
    return present(await updateUser(deps, user, body, picture, endOtherSessions), true)
  }

  const updateOptions = {
    auth: true,
    transform: ({ body }: { body: unknown }) => trimNameAndEmail(body),
    body: UpdateBody,
    response: { 200: User, 400: FieldErrorsBody, 413: ErrorBody, 415: ErrorBody, 429: ErrorBody, ...authErrors },
    detail: {
      summary: 'Change your email, name, password or picture (JSON, or multipart with a profile_pic file)',
      description:
        'Changing the email or password needs current_password; a password change ends your other sessions. Wrong current passwords are limited per user (429 with Retry-After).',
    },
  } as const

  const pageLink = (query: Record<string, string | undefined>, page: number) => {
    const url = new URL(`${deps.config.publicUrl}/api/users/`)
    for (const [key, value] of Object.entries(query)) if (value !== undefined && key !== 'page') url.searchParams.set(key, value)
    url.searchParams.set('page', String(page))
    return url.toString()
  }

  return new Elysia({ prefix: '/api/users', tags: ['users'] })
    .use(authGuard(deps))
    .get('/me', ({ user }) => presentCached(user, true), {
      auth: true,
      response: { 200: User, ...authErrors },
      detail: { summary: 'The caller (every other service calls this to authenticate a request)' },
    })
    .put('/update', update, updateOptions)
    .patch('/update', update, updateOptions)
    .get(
      '/',
      async ({ user, query }) => {
        const { count, page, hasNext, rows } = await listUsers(deps.db, {
          ...query,
          page: query.page === undefined ? undefined : Number(query.page),
          page_size: query.page_size === undefined ? undefined : Number(query.page_size),
        })
        return {
          count,
          next: hasNext ? pageLink(query, page + 1) : null,
          previous: page > 1 ? pageLink(query, page - 1) : null,
          results: rows.map((row) => present(row, user.isAdmin)),
        }
      },
      {
        auth: true,
        query: DirectoryParams,
        response: { 200: Page, 400: FieldErrorsBody, 404: ErrorBody, ...authErrors },
        detail: { summary: 'Public profiles by ids or by name search, a page at a time (emails for admins only)' },
      },
    )
    .get(
      '/:id',
      async ({ user, params }) => {
        // Other users' rows come from the same invalidated cache as the caller's.
        const found = params.id === user.id ? user : await deps.userCache.get(params.id)
        if (!found) throw userNotFound()
        return presentCached(found, found.id === user.id || user.isAdmin)
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
        const endSessions = async () =>
          deps.metrics.sessionsEnded.inc({ reason: 'account_deleted' }, await deps.sessions.endAllForUser(params.id))
        if (!(await deleteUser(deps, params.id, endSessions))) throw userNotFound()
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
