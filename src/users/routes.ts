import { Elysia, t } from 'elysia'
import { requestClient, type RequestServer } from '../http/client'
import { authGuard, type GuardDeps } from './guard'
import type { TokenClaims } from '../sessions/tokens'
import type { ServiceConfig } from '../config'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { directoryPage } from './directory'
import { USER_ERRORS } from './errors'
import { cachedUserBody, toUserBody, trimNameAndEmail, UpdateBody, User, UserIdParams } from './model'
import { deleteAccount, updateProfile, viewUser, type ProfileDeps, type UserChanges } from './service'
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

/** The wire body of an update mapped to plain changes; a text part where a file belongs is refused here. */
function toChanges(body: UpdateBody): UserChanges & { picture?: Blob | null } {
  const { profile_pic: picture } = body
  if (typeof picture === 'string' && picture !== '') throw USER_ERRORS.unsupportedImage()
  return {
    email: body.email,
    fullName: body.full_name,
    password: body.password,
    currentPassword: body.current_password,
    // An empty value (a form's empty field, or JSON null) removes the picture.
    picture: picture === '' ? null : picture,
  }
}

/** The caller's own record, other users' records and the directory, profile updates, and account deletion. */
export const usersRoutes = (deps: ProfileDeps & GuardDeps & { config: ServiceConfig }) => {
  // The client is read here, not in a derive: a derive would run on GET /me, the hot path, for nothing.
  type UpdateContext = { user: UserRow; claims: TokenClaims; body: UpdateBody; request: Request; server: RequestServer }
  const update = ({ user, claims, body, request, server }: UpdateContext) =>
    updateProfile(deps, { user, sid: claims.sid, client: requestClient(request, server, deps.config.trustedProxyHops) }, toChanges(body))

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

  return new Elysia({ prefix: '/api/users', tags: ['users'] })
    .use(authGuard(deps))
    .get('/me', ({ user }) => cachedUserBody(user, true, deps.files), {
      auth: true,
      response: { 200: User, ...authErrors },
      detail: { summary: 'The caller (every other service calls this to authenticate a request)' },
    })
    .put('/update', update, updateOptions)
    .patch('/update', update, updateOptions)
    .get('/', ({ user, query }) => directoryPage(deps, user, query), {
      auth: true,
      query: DirectoryParams,
      response: { 200: Page, 400: FieldErrorsBody, 404: ErrorBody, ...authErrors },
      detail: { summary: 'Public profiles by ids or by name search, a page at a time (emails for admins only)' },
    })
    .get('/:id', ({ user, params }) => viewUser(deps, user, params.id), {
      auth: true,
      params: UserIdParams,
      response: { 200: User, 404: ErrorBody, ...authErrors },
      detail: { summary: "A user's record (the email only for yourself or an admin)" },
    })
    .delete(
      '/:id',
      async ({ user, params, set }) => {
        await deleteAccount(deps, user, params.id)
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
