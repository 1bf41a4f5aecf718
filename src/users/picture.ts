import type { Config } from '../config'
import type { ServiceError } from '../errors'
import { USER_ERRORS } from './errors'
import { loadSharp, pictureSlots } from './sharp'

export type ImageType = { mime: string; extension: string; format: string }

const JPEG: ImageType = { mime: 'image/jpeg', extension: 'jpg', format: 'jpeg' }
const PNG: ImageType = { mime: 'image/png', extension: 'png', format: 'png' }
const GIF: ImageType = { mime: 'image/gif', extension: 'gif', format: 'gif' }
const WEBP: ImageType = { mime: 'image/webp', extension: 'webp', format: 'webp' }

/** Every picture is stored as WebP: all current browsers show it, it keeps transparency, and it is small. */
export const STORED_TYPE = WEBP

// Pictures stored before re-encoding kept their own format; their URLs still serve them.
export const IMAGE_TYPES_BY_EXTENSION: Record<string, ImageType> = { jpg: JPEG, png: PNG, gif: GIF, webp: WEBP }

/** The bounds a picture must fit: bytes as sent, pixels as declared by its header, and the stored picture's longer side. */
export type PictureLimits = { maxBytes: number; maxPixels: number; maxSide: number }

export const pictureLimits = (config: Pick<Config, 'profilePicMaxBytes' | 'profilePicMaxPixels' | 'profilePicMaxSide'>): PictureLimits => ({
  maxBytes: config.profilePicMaxBytes,
  maxPixels: config.profilePicMaxPixels,
  maxSide: config.profilePicMaxSide,
})

// A picture fits well within this even on a busy machine; a file that takes longer is built to.
const DECODE_TIMEOUT_SECONDS = 10

const startsWith = (bytes: Uint8Array, signature: number[], offset = 0) =>
  signature.every((byte, i) => bytes[offset + i] === byte)
const ascii = (text: string) => [...text].map((char) => char.charCodeAt(0))

/** The image type the bytes claim to be (magic numbers), whatever the upload's name or declared type says. */
export function sniffImage(bytes: Uint8Array): ImageType | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return JPEG
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return PNG
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return GIF
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return WEBP
  return undefined
}

/**
 * Why bytes are not a picture we store: no JPEG/PNG/WebP/GIF signature, a signature whose image does
 * not decode (a header followed by anything else), or more pixels than allowed (or too long to decode).
 */
export type PictureRefusal = 'not_an_image' | 'undecodable' | 'too_large'

export type Picture = { bytes: Uint8Array; type: ImageType }

/**
 * The picture as we store it, decoded and encoded again: only the pixels survive (no EXIF, XMP, ICC or
 * trailing bytes), turned upright by its EXIF orientation, converted to sRGB, shrunk to fit
 * `maxSide` × `maxSide`, first frame only, as WebP. Only the header is read before the pixel count
 * is checked, so a small file declaring a huge image is refused without being decoded.
 */
export async function normalisePicture(bytes: Uint8Array, limits: Omit<PictureLimits, 'maxBytes'>): Promise<Picture | PictureRefusal> {
  const claimed = sniffImage(bytes)
  if (!claimed) return 'not_an_image'
  return pictureSlots(async () => {
    const sharp = await loadSharp()
    const header = await sharp(bytes, { limitInputPixels: false }).metadata().catch(() => undefined)
    // libvips picks its decoder from the content too; it must be the one the signature named.
    if (!header || header.format !== claimed.format || !header.width || !header.height) return 'undecodable'
    if (header.width * header.height > limits.maxPixels) return 'too_large'
    // 'error' refuses truncated and corrupt data, but not the warnings many cameras' JPEGs raise and browsers show.
    try {
      const output = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
        .rotate()
        .resize({ width: limits.maxSide, height: limits.maxSide, fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 80 })
        .timeout({ seconds: DECODE_TIMEOUT_SECONDS })
        .toBuffer()
      return { bytes: new Uint8Array(output), type: STORED_TYPE }
    } catch (error) {
      return error instanceof Error && error.message.startsWith('timeout') ? 'too_large' : 'undecodable'
    }
  })
}

/** Storage key of a picture: the owner's id and a content hash, so a new picture gets a new URL. */
export function pictureKey(userId: string, bytes: Uint8Array, type: ImageType) {
  const hash = new Bun.CryptoHasher('sha256').update(bytes).digest('hex').slice(0, 32)
  return `profile-pics/${userId}/${hash}.${type.extension}`
}

const refusals: Record<PictureRefusal, (limits: PictureLimits) => ServiceError> = {
  not_an_image: USER_ERRORS.unsupportedImage,
  undecodable: USER_ERRORS.invalidImage,
  too_large: (limits) => USER_ERRORS.imageTooLarge(limits.maxPixels),
}

/**
 * The picture an update carries: undefined when there is none, null to remove the current one (an empty
 * file does too), else the re-encoded bytes and where they will be stored.
 */
export async function readPicture(value: Blob | null | undefined, userId: string, limits: PictureLimits) {
  if (value === undefined) return undefined
  if (value === null || value.size === 0) return null
  if (value.size > limits.maxBytes) throw USER_ERRORS.pictureTooLarge(limits.maxBytes)
  const picture = await normalisePicture(new Uint8Array(await value.arrayBuffer()), limits)
  if (typeof picture === 'string') throw refusals[picture](limits)
  return { key: pictureKey(userId, picture.bytes, picture.type), bytes: picture.bytes, mime: picture.type.mime }
}
