import { cors } from '@elysiajs/cors'
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import { authRoutes } from './auth/routes'
import { jsonBodies } from './body'
import type { Deps } from './deps'
import { errorsPlugin } from './errors'
import { relayWakeup } from './events/plugin'
import { healthRoutes } from './health/routes'
import { sessionsRoutes } from './sessions/routes'
import { usersRoutes } from './users/routes'

/** The whole HTTP API over the given dependencies; opens no connection itself. */
export function createApp(deps: Deps) {
  return new Elysia()
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
    .use(healthRoutes(deps.readiness))
    .use(jsonBodies(deps.config.maxBodyBytes))
    .use(authRoutes(deps))
    .use(sessionsRoutes(deps))
    .use(usersRoutes(deps))
}

/** The server's type, for the Eden treaty client. */
export type App = ReturnType<typeof createApp>
