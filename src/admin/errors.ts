import { ApiError } from '../errors'

/** The admin feature's refusals, by stable code. */
export const ADMIN_ERRORS = {
  userNotFound: () => new ApiError(404, 'user_not_found', 'User not found.'),
  pageNotFound: () => new ApiError(404, 'not_found', 'Invalid page.'),
  /** An admin disabling their own account would lock out, perhaps, the only admin. */
  cannotDisableSelf: () => new ApiError(403, 'permission_denied', 'An admin cannot disable their own account.'),
}
