import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
// Embedded by `bun build --compile`, so the binary serves the page with no network and no node_modules.
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }

export const DOCS_PATH = '/api/users/swagger'
const SPEC_PATH = `${DOCS_PATH}/json`

// The UI's own files and nothing else: no inline script, no third-party origin.
const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// An absolute spec URL: relative to the page it would resolve under the page's own path.
const INIT_SCRIPT = `window.ui = SwaggerUIBundle(${JSON.stringify({ url: SPEC_PATH, dom_id: '#swagger-ui', validatorUrl: null, deepLinking: true })})\n`

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Users service API</title>
  <link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="${DOCS_PATH}/init.js"></script>
</body>
</html>
`

const hidden = { detail: { hide: true } }

/**
 * The OpenAPI spec and a Swagger UI page over it, served by the service itself from swagger-ui-dist at the
 * version the lockfile pins. Routes declare their own security: only those behind the auth guard need a JWT.
 */
export const apiDocs = () =>
  new Elysia({ name: 'api-docs' })
    .use(
      openapi({
        provider: null,
        path: DOCS_PATH,
        specPath: SPEC_PATH,
        documentation: {
          info: { title: 'Users service', version: '1.0.0', description: 'Accounts, tokens and profiles' },
          components: { securitySchemes: { JWT: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
        },
      }),
    )
    .get(DOCS_PATH, ({ set }) => asset(set, PAGE, 'text/html; charset=utf-8'), hidden)
    .get(`${DOCS_PATH}/init.js`, ({ set }) => asset(set, INIT_SCRIPT, 'text/javascript; charset=utf-8'), hidden)
    .get(`${DOCS_PATH}/swagger-ui-bundle.js`, ({ set }) => asset(set, Bun.file(swaggerBundle), 'text/javascript; charset=utf-8'), hidden)
    .get(`${DOCS_PATH}/swagger-ui.css`, ({ set }) => asset(set, Bun.file(swaggerCss), 'text/css; charset=utf-8'), hidden)

function asset<T>(set: { headers: Record<string, string | number> }, body: T, type: string) {
  set.headers['content-type'] = type
  set.headers['content-security-policy'] = DOCS_CSP
  return body
}
