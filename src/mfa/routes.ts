import { Elysia, t } from 'elysia'
import { clientAddress } from '../http/client'
import { TokenPairBody } from '../auth/model'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { authGuard, type GuardDeps } from '../users/guard'
import {
  CodeBody,
  CurrentPasswordBody,
  EnrolBody,
  Enrolment,
  FactorIdParams,
  FactorList,
  MfaLoginBody,
  PasskeyLoginBody,
  PasskeyRegisterBody,
  RecoveryCodes,
  RegisteredPasskey,
  WebAuthnOptions,
} from './model'
import { loginWithPasskey, passkeyLoginOptions, passkeyRegistrationOptions, registerPasskey } from './passkeys'
import { completeMfaLogin, confirmTotp, enrolTotp, listFactors, regenerateRecoveryCodes, removeFactor, type MfaDeps } from './service'

const authErrors = { 401: ErrorBody, 503: ErrorBody }
const withPassword = { 400: FieldErrorsBody, 429: ErrorBody, ...authErrors }
const PASSWORD_NOTE = 'Needs current_password; wrong ones are limited per user, with the profile update (429 with Retry-After).'

/** Second factors: TOTP with recovery codes, passkeys, and the login's second step. */
export const mfaRoutes = (deps: MfaDeps & GuardDeps) =>
  new Elysia({ prefix: '/api/users', tags: ['mfa'] })
    .use(authGuard(deps))
    .derive(({ request, server }) => ({
      client: {
        ip: clientAddress(request, server?.requestIP(request)?.address, deps.config.trustedProxyHops),
        userAgent: request.headers.get('user-agent'),
      },
    }))
    .get('/mfa', ({ user }) => listFactors(deps, user.id), {
      auth: true,
      response: { 200: FactorList, ...authErrors },
      detail: { summary: "The caller's confirmed second factors and how many recovery codes are left" },
    })
    .post('/mfa/totp', ({ user, body }) => enrolTotp(deps, user, body.current_password, body.name), {
      auth: true,
      body: EnrolBody,
      response: { 200: Enrolment, ...withPassword },
      detail: {
        summary: 'Start adding an authenticator app: a secret and its otpauth:// URL (for a QR code), pending until confirmed',
        description: PASSWORD_NOTE,
      },
    })
    .post('/mfa/totp/:id/confirm', ({ user, params, body, client }) => confirmTotp(deps, user, params.id, body.code, client), {
      auth: true,
      params: FactorIdParams,
      body: CodeBody,
      response: { 200: RecoveryCodes, 400: FieldErrorsBody, 404: ErrorBody, ...authErrors },
      detail: { summary: 'Confirm an authenticator app with a code from it; answers 10 new recovery codes, shown once' },
    })
    .post('/mfa/recovery-codes', ({ user, body }) => regenerateRecoveryCodes(deps, user, body.current_password), {
      auth: true,
      body: CurrentPasswordBody,
      response: { 200: RecoveryCodes, ...withPassword },
      detail: { summary: 'Replace the recovery codes with 10 new ones, shown once', description: PASSWORD_NOTE },
    })
    .delete(
      '/mfa/:id',
      async ({ user, params, body, client, set }) => {
        await removeFactor(deps, user, params.id, body.current_password, client)
        set.status = 204
      },
      {
        auth: true,
        params: FactorIdParams,
        body: CurrentPasswordBody,
        response: { 204: t.Void(), 404: ErrorBody, ...withPassword },
        detail: { summary: 'Remove a second factor (with the last one, the recovery codes go too)', description: PASSWORD_NOTE },
      },
    )
    .post('/login/mfa', ({ body, client }) => completeMfaLogin(deps, body.mfa_token, body.code, client), {
      body: MfaLoginBody,
      response: { 200: TokenPairBody, 400: FieldErrorsBody, 403: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      detail: {
        summary: "A login's second step: the mfa_token of the 403 `mfa_required` and a TOTP or recovery code",
        description:
          'Five wrong codes void the mfa_token (then 400 on `mfa_token`: log in again); wrong codes are also limited per account (429 with Retry-After). The access token carries `amr`.',
      },
    })
    .post('/passkeys/register/options', ({ user, body }) => passkeyRegistrationOptions(deps, user, body.current_password), {
      auth: true,
      body: CurrentPasswordBody,
      response: { 200: WebAuthnOptions, ...withPassword },
      detail: { summary: 'Options for navigator.credentials.create (the challenge lives 5 minutes, for one use)', description: PASSWORD_NOTE },
    })
    .post('/passkeys/register', ({ user, body, client }) => registerPasskey(deps, user, body.credential, client, body.name), {
      auth: true,
      body: PasskeyRegisterBody,
      response: { 200: RegisteredPasskey, 400: t.Union([FieldErrorsBody, ErrorBody]), ...authErrors },
      detail: { summary: "Store the authenticator's new passkey; answers it and 10 new recovery codes" },
    })
    .post('/passkeys/login/options', () => passkeyLoginOptions(deps), {
      response: { 200: WebAuthnOptions, 503: ErrorBody },
      detail: { summary: 'Options for navigator.credentials.get (the challenge lives 5 minutes, for one use)' },
    })
    .post('/passkeys/login', ({ body, client }) => loginWithPasskey(deps, body.credential, client), {
      body: PasskeyLoginBody,
      response: { 200: TokenPairBody, 400: t.Union([FieldErrorsBody, ErrorBody]), 403: ErrorBody, 503: ErrorBody },
      detail: { summary: 'Sign in with a passkey, without a password; the access token carries `amr: ["webauthn"]`' },
    })
