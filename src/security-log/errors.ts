import { ApiError } from '../errors'

/** The security log's refusals, by stable code. */
export const SECURITY_LOG_ERRORS = {
  /** A page past the last, as DRF answers. */
  pageNotFound: () => new ApiError(404, 'not_found', 'Invalid page.'),
}
