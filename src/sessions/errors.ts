import { unauthorized } from '../errors'

// simplejwt's answers, which the old clients know; the guard and refresh give the same.
export const tokenNotValid = () => unauthorized('Token is invalid or expired', 'token_not_valid')
export const unknownUser = () => unauthorized('User not found', 'user_not_found')

/** simplejwt's answer for a valid token of a deactivated user. */
export const userInactive = () => unauthorized('User is inactive', 'user_inactive')
