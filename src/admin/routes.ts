import { Elysia, t } from 'elysia'
import { requestClient } from '../http/client'
import { authGuard, type GuardDeps } from '../users/guard'
import type { ServiceConfig } from '../config'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { AuditEvent, PageQuery, pageLink, pageOf, SecurityEventType, toAuditEvent } from '../security-log/model'
import { listSecurityEvents } from '../security-log/service'
import { UserIdParams } from '../users/model'
import { AdminUser, DisableBody, toAdminUser } from './model'
import { disableAccount, enableAccount, listAccounts, logoutAccount, type AdminDeps } from './service'

const guarded = { 401: ErrorBody, 403: ErrorBody, 503: ErrorBody }
const number = (value: string | undefined) => (value === undefined ? undefined : Number(value))

/** The operators' API: find accounts, disable and enable them, log them out, read the audit log. Admins only. */
export const adminRoutes = (deps: AdminDeps & GuardDeps & { config: ServiceConfig }) => {
  const PREFIX = '/api/users/admin'
  const links = (path: string, query: Record<string, string | undefined>, page: number, hasNext: boolean) => ({
    next: hasNext ? pageLink(deps.config.publicUrl, `${PREFIX}${path}`, query, page + 1) : null,
    previous: page > 1 ? pageLink(deps.config.publicUrl, `${PREFIX}${path}`, query, page - 1) : null,
  })

  return new Elysia({ prefix: PREFIX, tags: ['admin'] })
    .use(authGuard(deps))
    .derive(({ request, server }) => ({ client: requestClient(request, server, deps.config.trustedProxyHops) }))
    .get(
      '/users',
      async ({ query }) => {
        const { count, page, hasNext, rows } = await listAccounts(deps.db, { search: query.search, page: number(query.page), pageSize: number(query.page_size) })
        return { count, ...links('/users/', query, page, hasNext), results: rows.map((row) => toAdminUser(row, deps.files)) }
      },
      {
        admin: true,
        query: t.Object({
          search: t.Optional(t.String({ maxLength: 254, description: 'Part of the email, or the start of a word of the name' })),
          ...PageQuery,
        }),
        response: { 200: pageOf(AdminUser), 400: FieldErrorsBody, 404: ErrorBody, ...guarded },
        detail: { summary: 'Find accounts by email or name, with their state (20 a page by default)' },
      },
    )
    .post(
      '/users/:id/disable',
      async ({ user, client, params, body }) =>
        toAdminUser(await disableAccount(deps, { adminId: user.id, client }, params.id, body.reason), deps.files),
      {
        admin: true,
        params: UserIdParams,
        body: DisableBody,
        response: { 200: AdminUser, 400: FieldErrorsBody, 404: ErrorBody, ...guarded },
        detail: {
          summary: 'Disable an account: every session ends at once, and its login answers as wrong credentials do',
          description: 'Emits user.updated. The reason is kept in the audit log. An admin cannot disable their own account (403).',
        },
      },
    )
    .post(
      '/users/:id/enable',
      async ({ user, client, params }) => toAdminUser(await enableAccount(deps, { adminId: user.id, client }, params.id), deps.files),
      {
        admin: true,
        params: UserIdParams,
        response: { 200: AdminUser, 404: ErrorBody, ...guarded },
        detail: { summary: 'Enable a disabled account (emits user.updated)' },
      },
    )
    .post(
      '/users/:id/logout',
      async ({ user, client, params, set }) => {
        await logoutAccount(deps, { adminId: user.id, client }, params.id)
        set.status = 204
      },
      {
        admin: true,
        params: UserIdParams,
        response: { 204: t.Void(), 404: ErrorBody, ...guarded },
        detail: { summary: 'End every session of an account; its tokens stop working at once' },
      },
    )
    .get(
      '/audit',
      async ({ query }) => {
        const { count, page, hasNext, rows } = await listSecurityEvents(deps.db, {
          userId: query.user?.toLowerCase(),
          type: query.type,
          page: number(query.page),
          pageSize: number(query.page_size),
        })
        return { count, ...links('/audit/', query, page, hasNext), results: rows.map(toAuditEvent) }
      },
      {
        admin: true,
        query: t.Object({
          user: t.Optional(t.String({ format: 'uuid', description: "Only this account's events" })),
          type: t.Optional(SecurityEventType),
          ...PageQuery,
        }),
        response: { 200: pageOf(AuditEvent), 400: FieldErrorsBody, 404: ErrorBody, ...guarded },
        detail: { summary: 'Security events of every account, newest first, by user and type (20 a page by default)' },
      },
    )
}
