import { ServiceError } from '../errors'

/** The auth feature's refusals; http/errors.ts gives each kind its status. */
export const AUTH_ERRORS = {
  // Checked only after the password: an unverified account is not revealed to someone who does not know it.
  emailNotVerified: () => new ServiceError('forbidden', 'email_not_verified', 'Verify your email address before logging in.'),
  // Also only after the password: the step-up names the methods, which a stranger must not learn.
  mfaRequired: (mfaToken: string, methods: string[]) =>
    new ServiceError('forbidden', 'mfa_required', 'A second factor is required to complete the login.', undefined, { mfa_token: mfaToken, methods }),
  noSigningKey: () => new ServiceError('not_found', 'not_found', 'No asymmetric signing key is configured.'),
  // Someone else's session is as unknown as a missing one.
  sessionNotFound: () => new ServiceError('not_found', 'not_found', 'Session not found.'),
}
