import { ApiError } from '../errors'

export type ImageType = { mime: string; extension: string }

const JPEG: ImageType = { mime: 'image/jpeg', extension: 'jpg' }
const PNG: ImageType = { mime: 'image/png', extension: 'png' }
const GIF: ImageType = { mime: 'image/gif', extension: 'gif' }
const WEBP: ImageType = { mime: 'image/webp', extension: 'webp' }

export const IMAGE_TYPES_BY_EXTENSION: Record<string, ImageType> = { jpg: JPEG, png: PNG, gif: GIF, webp: WEBP }

const startsWith = (bytes: Uint8Array, signature: number[], offset = 0) =>
  signature.every((byte, i) => bytes[offset + i] === byte)
const ascii = (text: string) => [...text].map((char) => char.charCodeAt(0))

/** The image type the bytes really are (magic numbers), whatever the upload's name or declared type says. */
export function sniffImage(bytes: Uint8Array): ImageType | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return JPEG
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return PNG
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return GIF
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return WEBP
  return undefined
}

/** Storage key of a picture: the owner's id and a content hash, so a new picture gets a new URL. */
export function pictureKey(userId: string, bytes: Uint8Array, type: ImageType) {
  const hash = new Bun.CryptoHasher('sha256').update(bytes).digest('hex').slice(0, 32)
  return `profile-pics/${userId}/${hash}.${type.extension}`
}

export const unsupportedImage = () =>
  new ApiError(415, 'unsupported_media_type', 'profile_pic must be a JPEG, PNG, WebP or GIF image.')

export const pictureTooLarge = (maxBytes: number) =>
  new ApiError(413, 'request_too_large', `profile_pic is larger than ${maxBytes} bytes.`)

/**
 * The picture an update carries: undefined when the field is absent, null when it is sent empty (or
 * null in JSON) to remove the picture, else the checked bytes and where they will be stored.
 */
export async function readPicture(value: File | string | null | undefined, userId: string, maxBytes: number) {
  if (value === undefined) return undefined
  if (value === null || value === '' || (value instanceof Blob && value.size === 0)) return null
  if (typeof value === 'string') throw unsupportedImage()
  if (value.size > maxBytes) throw pictureTooLarge(maxBytes)
  const bytes = new Uint8Array(await value.arrayBuffer())
  const type = sniffImage(bytes)
  if (!type) throw unsupportedImage()
  return { key: pictureKey(userId, bytes, type), bytes, mime: type.mime }
}
