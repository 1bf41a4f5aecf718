import { ServiceError } from '../errors'

/** The auth feature's refusals; http/errors.ts gives each kind its status. */
export const AUTH_ERRORS = {
  noSigningKey: () => new ServiceError('not_found', 'not_found', 'No asymmetric signing key is configured.'),
  // Someone else's session is as unknown as a missing one.
  sessionNotFound: () => new ServiceError('not_found', 'not_found', 'Session not found.'),
}
