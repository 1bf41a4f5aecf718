import { ServiceError } from '../errors'

/** The security log's refusals; http/errors.ts gives each kind its status. */
export const SECURITY_LOG_ERRORS = {
  /** A page past the last, as DRF answers. */
  pageNotFound: () => new ServiceError('not_found', 'not_found', 'Invalid page.'),
}
