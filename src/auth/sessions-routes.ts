import { Elysia, t } from 'elysia'
import { authGuard, type GuardDeps } from '../users/guard'
import { requestClient } from '../http/client'
import { endOwnSession, logout, logoutAll, type AuthDeps } from './service'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { RefreshBody } from './model'

const Session = t.Object({
  id: t.String(),
  created_at: t.String({ format: 'date-time' }),
  last_used_at: t.String({ format: 'date-time' }),
  ip_address: t.Union([t.String(), t.Null()]),
  user_agent: t.Union([t.String(), t.Null()]),
  current: t.Boolean({ description: 'Whether this is the session of the token making the request' }),
})

const errors = { 401: ErrorBody, 503: ErrorBody }

/** Logout, logout everywhere, and the caller's list of sessions. */
export const sessionsRoutes = (deps: AuthDeps & GuardDeps) =>
  new Elysia({ prefix: '/api/users', tags: ['sessions'] })
    .use(authGuard(deps))
    .derive(({ request, server }) => ({ client: requestClient(request, server, deps.config.trustedProxyHops) }))
    .post(
      '/logout',
      async ({ user, body, client, set }) => {
        await logout(deps, user.id, body.refresh, client)
        set.status = 204
      },
      {
        auth: true,
        body: RefreshBody,
        response: { 204: t.Void(), 400: FieldErrorsBody, ...errors },
        detail: { summary: "End the refresh token's session; its access tokens stop working at once" },
      },
    )
    .post(
      '/logout-all',
      async ({ user, client, set }) => {
        await logoutAll(deps, user.id, client)
        set.status = 204
      },
      { auth: true, response: { 204: t.Void(), ...errors }, detail: { summary: 'End every session of the caller' } },
    )
    .get(
      '/sessions',
      async ({ user, claims }) =>
        (await deps.sessions.list(user.id)).map((session) => ({
          id: session.sid,
          created_at: new Date(session.createdAt).toISOString(),
          last_used_at: new Date(session.lastUsedAt).toISOString(),
          ip_address: session.ip,
          user_agent: session.userAgent,
          current: session.sid === claims.sid,
        })),
      { auth: true, response: { 200: t.Array(Session), ...errors }, detail: { summary: "The caller's live sessions" } },
    )
    .delete(
      '/sessions/:id',
      async ({ user, params, client, set }) => {
        await endOwnSession(deps, user.id, params.id, client)
        set.status = 204
      },
      {
        auth: true,
        params: t.Object({ id: t.String({ maxLength: 64 }) }),
        response: { 204: t.Void(), 404: ErrorBody, ...errors },
        detail: { summary: 'End one of your sessions' },
      },
    )
