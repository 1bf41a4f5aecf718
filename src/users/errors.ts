import { ServiceError } from '../errors'

/** The users feature's refusals; http/errors.ts gives each kind its status. */
export const USER_ERRORS = {
  userNotFound: () => new ServiceError('not_found', 'user_not_found', 'User not found.'),
  permissionDenied: () => new ServiceError('forbidden', 'permission_denied', 'You do not have permission to perform this action.'),
  pageNotFound: () => new ServiceError('not_found', 'not_found', 'Invalid page.'),
  pictureNotFound: () => new ServiceError('not_found', 'not_found', 'Not found.'),
  unsupportedImage: () => new ServiceError('unsupported', 'unsupported_media_type', 'profile_pic must be a JPEG, PNG, WebP or GIF image.'),
  invalidImage: () => new ServiceError('unsupported', 'invalid_image', 'profile_pic is not a valid JPEG, PNG, WebP or GIF image.'),
  pictureTooLarge: (maxBytes: number) => new ServiceError('too_large', 'request_too_large', `profile_pic is larger than ${maxBytes} bytes.`),
  imageTooLarge: (maxPixels: number) =>
    new ServiceError('too_large', 'image_too_large', `profile_pic has more than ${maxPixels} pixels, or takes too long to decode.`),
}
