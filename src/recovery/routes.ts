import { Elysia } from 'elysia'
import { clientAddress } from '../http/client'
import { authGuard, type GuardDeps } from '../users/guard'
import { MfaRequiredBody, TokenPairBody } from '../auth/model'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { toUserBody, trimNameAndEmail, User } from '../users/model'
import { AcceptedBody, ResetConfirmBody, ResetRequestBody, VerifyBody } from './model'
import { confirmPasswordReset, requestPasswordReset, resendVerification, verifyEmail, type RecoveryDeps } from './service'

const RESET_REQUESTED = 'If an account uses this address, a message to reset its password is on its way.'
const VERIFICATION_SENT = 'If your address is not verified yet, a new verification message is on its way.'

const unavailable = { 503: ErrorBody }

/** Password reset by link or code, email verification, and resending the verification message. */
export const recoveryRoutes = (deps: RecoveryDeps & GuardDeps) =>
  new Elysia({ prefix: '/api/users', tags: ['recovery'] })
    .use(authGuard(deps))
    .derive(({ request, server }) => ({
      client: {
        ip: clientAddress(request, server?.requestIP(request)?.address, deps.config.trustedProxyHops),
        userAgent: request.headers.get('user-agent'),
      },
    }))
    .post(
      '/password/reset',
      async ({ body, client, status }) => {
        await requestPasswordReset(deps, body.email, client)
        return status(202, { detail: RESET_REQUESTED })
      },
      {
        transform: ({ body }) => trimNameAndEmail(body),
        body: ResetRequestBody,
        response: { 202: AcceptedBody, 400: FieldErrorsBody, 429: ErrorBody, ...unavailable },
        detail: {
          summary: 'Ask for a password reset message',
          description: 'The same answer, in the same time, whether or not an account uses the address. Limited per address and per email (429).',
        },
      },
    )
    .post('/password/reset/confirm', ({ body, client }) => confirmPasswordReset(deps, body, body.password, client), {
      body: ResetConfirmBody,
      response: { 200: TokenPairBody, 400: FieldErrorsBody, 403: MfaRequiredBody, ...unavailable },
      detail: {
        summary: 'Set a new password with the token or the code of a reset message',
        description:
          'Ends every session of the account and starts a new one. A wrong, used or expired token or code is a 400 naming `token` or `code`. An account with a second factor gets the new password but no session: 403 `mfa_required`, as at the login.',
      },
    })
    .post('/email/verify', async ({ body, client }) => toUserBody(await verifyEmail(deps, body, client), true, deps.files), {
      body: VerifyBody,
      response: { 200: User, 400: FieldErrorsBody, ...unavailable },
      detail: { summary: 'Prove an address with the token or the code of a verification message' },
    })
    .post(
      '/email/verify/resend',
      async ({ user, client, status }) => {
        await resendVerification(deps, user.id, client)
        return status(202, { detail: VERIFICATION_SENT })
      },
      {
        auth: true,
        response: { 202: AcceptedBody, 401: ErrorBody, 429: ErrorBody, ...unavailable },
        detail: { summary: "Send a new verification message to the caller's address (older ones stop working)" },
      },
    )

