import { Elysia, t } from 'elysia'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { AUTH_ERRORS } from './errors'
import { RegisterBody, trimNameAndEmail } from '../users/model'
import { clientAddress } from '../http/client'
import { LoginBody, MfaRequiredBody, RefreshBody, TokenPairBody } from './model'
import { login, refresh, register, type AuthDeps } from './service'

const throttled = { 429: ErrorBody, 503: ErrorBody }

/** Register, login and refresh: the routes that hand out tokens; and the public keys that verify them. */
export const authRoutes = (deps: AuthDeps) =>
  new Elysia({ tags: ['auth'] })
    .get(
      '/.well-known/jwks.json',
      () => {
        if (deps.tokens.jwks.keys.length === 0) throw AUTH_ERRORS.noSigningKey()
        return deps.tokens.jwks
      },
      {
        response: { 200: t.Object({ keys: t.Array(t.Record(t.String(), t.Unknown())) }), 404: ErrorBody },
        detail: { summary: 'Public keys for verifying tokens (only with an EdDSA or ES256 signing key)' },
      },
    )
    .group('/api/users', (users) =>
      users
        .derive(({ request, server }) => ({
          client: {
            ip: clientAddress(request, server?.requestIP(request)?.address, deps.config.trustedProxyHops),
            userAgent: request.headers.get('user-agent'),
          },
        }))
        .post(
          '/register',
          ({ body, client }) => register(deps, { email: body.email, fullName: body.full_name, password: body.password }, client),
          {
            transform: ({ body }) => trimNameAndEmail(body),
            body: RegisterBody,
            response: { 200: TokenPairBody, 400: FieldErrorsBody, ...throttled },
            detail: { summary: 'Create an account and start a session' },
          },
        )
        .post('/login', ({ body, client }) => login(deps, body.email, body.password, client), {
          body: LoginBody,
          response: { 200: TokenPairBody, 400: FieldErrorsBody, 403: MfaRequiredBody, ...throttled },
          detail: {
            summary: 'Start a session with email and password',
            description:
              'With REQUIRE_EMAIL_VERIFICATION=true, an unverified account gets 403 `email_not_verified` (after a right password only). An account with a second factor gets 403 `mfa_required` with `mfa_token` and `methods`: continue at POST /api/users/login/mfa/ (or sign in with a passkey).',
          },
        })
        .post('/refresh', ({ body, client }) => refresh(deps, body.refresh, client), {
          body: RefreshBody,
          response: { 200: TokenPairBody, 400: FieldErrorsBody, 401: ErrorBody, 503: ErrorBody },
          detail: { summary: 'Rotate a refresh token: a new pair, and the old refresh token stops working' },
        }),
    )
