import { ServiceError } from '../errors'

const unauthenticated = (code: string, detail: string) => new ServiceError('unauthenticated', code, detail)

/** Why a token or its session is refused: simplejwt's codes and words, which the old clients know. */
export const SESSION_ERRORS = {
  notAuthenticated: () => unauthenticated('not_authenticated', 'Authentication credentials were not provided.'),
  /** An access token that fails verification. */
  accessTokenNotValid: () => unauthenticated('token_not_valid', 'Given token not valid for any token type'),
  tokenNotValid: () => unauthenticated('token_not_valid', 'Token is invalid or expired'),
  tokenReused: () => unauthenticated('token_not_valid', 'Token has already been used; the session has been ended.'),
  unknownUser: () => unauthenticated('user_not_found', 'User not found'),
  /** A valid token of a deactivated user. */
  userInactive: () => unauthenticated('user_inactive', 'User is inactive'),
}
