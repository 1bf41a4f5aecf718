import { cors } from '@elysiajs/cors'
import { Elysia } from 'elysia'
import { adminRoutes } from './admin/routes'
import { authRoutes } from './auth/routes'
import { requestBodies } from './http/body'
import type { Deps } from './deps'
import { apiDocs } from './docs'
import { errorsPlugin } from './http/errors'
import { restoreStringFormats } from './http/formats'
import { requestHooks } from './http/request-hooks'
import { relayWakeup } from './events/plugin'
import { metricsRoute } from './health/metrics-route'
import { healthRoutes } from './health/routes'
import { recoveryRoutes } from './recovery/routes'
import { mfaRoutes } from './mfa/routes'
import { oidcRoutes } from './oidc/routes'
import { sessionsRoutes } from './auth/sessions-routes'
import { mediaRoutes } from './users/media-routes'
import { usersRoutes } from './users/routes'
import { securityLogRoutes } from './users/security-log-routes'

/** The whole HTTP API over the given dependencies; opens no connection itself. */
export function createApp(deps: Deps) {
  restoreStringFormats()
  // Elysia finds the path by skipping 11 characters of the URL by default, assuming a host of at least
  // four ("http://a.bc"): `Host: x` would shift every path and route it to 404.
  return new Elysia({ handler: { standardHostname: false } })
    .use(requestHooks(deps))
    .use(errorsPlugin(deps.logger))
    .use(corsFor(deps.config.corsOrigins))
    .use(apiDocs())
    .use(relayWakeup(deps.relay))
    // The same after-response wake-up: a request that queued a message sees it leave within milliseconds.
    .use(relayWakeup(deps.mailRelay))
    .use(metricsRoute(deps.metrics))
    .use(healthRoutes(deps.readiness))
    .use(requestBodies(bodyLimits(deps.config)))
    .use(authRoutes(deps))
    .use(sessionsRoutes(deps))
    .use(mediaRoutes(deps.files))
    .use(usersRoutes(deps))
    .use(recoveryRoutes(deps))
    .use(mfaRoutes(deps))
    .use(oidcRoutes(deps))
    .use(securityLogRoutes(deps))
    .use(adminRoutes(deps))
}

/**
 * CORS for the configured origins. With none, no browser on another origin may read a response, so the
 * plugin is left out: it otherwise ran on every request, copying the request's header names into two
 * response headers that no browser would act on.
 */
function corsFor(origins: string[]) {
  if (!origins.length) return new Elysia({ name: 'cors-off' })
  return cors({
    origin: origins,
    // Tokens travel in the Authorization header, never in a cookie: a browser need not send credentials.
    credentials: false,
    // What a frontend must read: when to retry, the id to quote in a report, why a token was refused.
    exposeHeaders: ['Retry-After', 'X-Request-Id', 'WWW-Authenticate'],
    maxAge: 600,
  })
}

/** JSON bodies up to MAX_BODY_BYTES; a multipart form may carry a whole picture and a little more. */
export const bodyLimits = (config: Deps['config']) => ({
  jsonBytes: config.maxBodyBytes,
  multipartBytes: config.profilePicMaxBytes + 64 * 1024,
})

/** The server's type, for the Eden treaty client. */
export type App = ReturnType<typeof createApp>
