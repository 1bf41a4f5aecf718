import { ServiceError } from '../errors'

/** The admin feature's refusals; http/errors.ts gives each kind its status. */
export const ADMIN_ERRORS = {
  userNotFound: () => new ServiceError('not_found', 'user_not_found', 'User not found.'),
  pageNotFound: () => new ServiceError('not_found', 'not_found', 'Invalid page.'),
  /** An admin disabling their own account would lock out, perhaps, the only admin. */
  cannotDisableSelf: () => new ServiceError('forbidden', 'permission_denied', 'An admin cannot disable their own account.'),
}
