import { fieldError, ServiceError } from '../errors'

/** The OpenID Connect feature's refusals answered as JSON; http/errors.ts gives each kind its status. */
export const OIDC_ERRORS = {
  providerNotFound: () => new ServiceError('not_found', 'provider_not_found', 'No such identity provider is configured.'),
  providerUnavailable: () =>
    new ServiceError('unavailable', 'provider_unavailable', 'The identity provider cannot be reached; try again shortly.', 5),
  // It answered, but its discovery document is not one this service can use (wrong issuer, not JSON, an error status).
  providerInvalid: () => new ServiceError('bad_gateway', 'provider_invalid', 'The identity provider answered with an unusable configuration.'),
  redirectNotAllowed: () => fieldError('redirect_uri', 'This redirect URL is not one of the allowed ones.'),
  // Unknown, tampered, expired, already used or another browser's: which one is not said, and there is nowhere safe to redirect to.
  invalidState: () => fieldError('state', 'This sign-in has expired, was already used or was started in another browser; start again.'),
  invalidCode: () => fieldError('code', 'Invalid or expired code.'),
  // The provider's email belongs to an account the provider cannot be trusted to prove: sign in, then link.
  accountExists: () =>
    new ServiceError('conflict', 'account_exists', 'An account with this email already exists; sign in to it, then link this provider from its settings.'),
  lastSignInMethod: () =>
    new ServiceError('conflict', 'last_sign_in_method', 'This is the last way to sign in to the account; set a password or link another provider first.'),
  // The link's code came back to a browser signed in as someone else (or as no one): nothing is linked.
  linkNotYours: () => new ServiceError('forbidden', 'link_not_yours', 'This link was started by another account; start it again from your own settings.'),
  identityInUse: () => new ServiceError('conflict', 'identity_in_use', 'This provider account is linked to another user.'),
  identityNotFound: () => new ServiceError('not_found', 'not_found', 'Not found.'),
}

/**
 * The `?error=` codes a callback redirects with once it knows where to (its state was valid): a public
 * contract, documented in docs/oidc.md. Nothing else about a failure travels in the URL.
 */
export type CallbackErrorCode =
  | 'access_denied'
  | 'provider_error'
  | 'provider_unavailable'
  | 'invalid_id_token'
  | 'email_required'
  | 'identity_in_use'
  | 'temporarily_unavailable'

/** A callback that failed after its state was found: the code the redirect carries. */
export class CallbackRefusal extends Error {
  constructor(
    readonly code: CallbackErrorCode,
    cause?: unknown,
  ) {
    super(code, { cause })
  }
}
