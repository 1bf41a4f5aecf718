import { Elysia, t } from 'elysia'
import { authGuard, type GuardDeps } from './guard'
import type { ServiceConfig } from '../config'
import type { Database } from '../db'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { OwnSecurityEvent, PageQuery, pageLink, pageOf, toOwnSecurityEvent } from '../security-log/model'
import { listSecurityEvents } from '../security-log/service'

/**
 * The caller's own security log. It lives with the users feature rather than in security-log/, which every
 * feature writes to and so must import none of them (the guard included).
 */
export const securityLogRoutes = (deps: GuardDeps & { db: Database; config: ServiceConfig }) =>
  new Elysia({ prefix: '/api/users', tags: ['users'] }).use(authGuard(deps)).get(
    '/me/security-log',
    async ({ user, query }) => {
      const { count, page, hasNext, rows } = await listSecurityEvents(deps.db, {
        userId: user.id,
        page: query.page === undefined ? undefined : Number(query.page),
        pageSize: query.page_size === undefined ? undefined : Number(query.page_size),
      })
      const link = (to: number) => pageLink(deps.config.publicUrl, '/api/users/me/security-log/', query, to)
      return { count, next: hasNext ? link(page + 1) : null, previous: page > 1 ? link(page - 1) : null, results: rows.map(toOwnSecurityEvent) }
    },
    {
      auth: true,
      query: t.Object(PageQuery),
      response: { 200: pageOf(OwnSecurityEvent), 400: FieldErrorsBody, 404: ErrorBody, 401: ErrorBody, 503: ErrorBody },
      detail: { summary: 'Your security events (logins, failed logins, password and email changes, ...), newest first, 20 a page' },
    },
  )
