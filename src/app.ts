import { cors } from '@elysiajs/cors'
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import { authRoutes } from './auth/routes'
import { requestBodies } from './body'
import type { Deps } from './deps'
import { errorsPlugin } from './errors'
import { restoreStringFormats } from './formats'
import { requestHooks } from './request-hooks'
import { relayWakeup } from './events/plugin'
import { healthRoutes } from './health/routes'
import { recoveryRoutes } from './recovery/routes'
import { sessionsRoutes } from './sessions/routes'
import { mediaRoutes } from './storage/routes'
import { usersRoutes } from './users/routes'

/** The whole HTTP API over the given dependencies; opens no connection itself. */
export function createApp(deps: Deps) {
  restoreStringFormats()
  return new Elysia()
    .use(requestHooks(deps))
    .use(errorsPlugin(deps.logger))
    .use(cors({ origin: deps.config.corsOrigins.length ? deps.config.corsOrigins : false, credentials: true }))
    .use(
      openapi({
        path: '/api/users/swagger',
        specPath: '/api/users/swagger/json',
        documentation: {
          info: { title: 'Users service', version: '1.0.0', description: 'Accounts, tokens and profiles' },
          components: { securitySchemes: { JWT: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
          security: [{ JWT: [] }],
        },
      }),
    )
    .use(relayWakeup(deps.relay))
    // The same after-response wake-up: a request that queued a message sees it leave within milliseconds.
    .use(relayWakeup(deps.mailRelay))
    .use(healthRoutes(deps.readiness, deps.metrics))
    .use(requestBodies(bodyLimits(deps.config)))
    .use(authRoutes(deps))
    .use(sessionsRoutes(deps))
    .use(mediaRoutes(deps.files))
    .use(usersRoutes(deps))
    .use(recoveryRoutes(deps))
}

/** JSON bodies up to MAX_BODY_BYTES; a multipart form may carry a whole picture and a little more. */
export const bodyLimits = (config: Deps['config']) => ({
  jsonBytes: config.maxBodyBytes,
  multipartBytes: config.profilePicMaxBytes + 64 * 1024,
})

/** The server's type, for the Eden treaty client. */
export type App = ReturnType<typeof createApp>
