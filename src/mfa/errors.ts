import { fieldError, ServiceError } from '../errors'

/** The second-factor feature's refusals; http/errors.ts gives each kind its status. */
export const MFA_ERRORS = {
  // Wrong, used up, expired or already used: which one is not revealed; the client logs in again.
  invalidMfaToken: () => fieldError('mfa_token', 'The sign-in step has expired or was used up; log in again.'),
  invalidCode: () => fieldError('code', 'Invalid or expired code.'),
  factorNotFound: () => new ServiceError('not_found', 'not_found', 'Not found.'),
  alreadyConfirmed: () => new ServiceError('invalid', 'factor_already_confirmed', 'This factor is already confirmed.'),
  // A refused WebAuthn answer: malformed, for another site, a stale or used challenge, a bad signature.
  passkeyRefused: () => new ServiceError('invalid', 'passkey_invalid', 'The passkey answer was not accepted.'),
}
