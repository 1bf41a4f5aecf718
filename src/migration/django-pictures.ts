import { isAbsolute, relative, resolve } from 'node:path'
import { normalisePicture, pictureKey, type PictureLimits } from '../users/picture'

/** Where the old service's pictures are: its MEDIA_ROOT copied here (`--media`), or its MEDIA_URL (`--media-url`). */
export type PictureSource = { mediaDir?: string; mediaUrl?: string }

/** Why an old picture was not copied into our storage. */
// `missing_file` covers a file that is there but cannot be read (a folder, no permission); the last three
// are the refusals of an upload (no image signature, a broken image, too many pixels).
export type PictureProblem = 'not_kept' | 'unsafe_path' | 'missing_file' | 'not_an_image' | 'undecodable' | 'too_large'

/** What an imported user's `profile_pic` becomes: a storage key (with the bytes to store), a link, or null. */
export type ImportedPicture = {
  value: string | null
  upload?: { key: string; bytes: Uint8Array; mime: string }
  problem?: PictureProblem
}

/**
 * The picture of one old user, from the ImageField's value (a path relative to MEDIA_ROOT, '' for none),
 * re-encoded as an upload is (old files were never checked, and keep their EXIF), with the same pixel
 * bound but not the upload's byte limit, which bounds request bodies rather than decoding. A file that
 * cannot be copied falls back to its old URL when `mediaUrl` is given.
 */
export async function importPicture(
  source: PictureSource,
  limits: Omit<PictureLimits, 'maxBytes'>,
  userId: string,
  path: string | null,
): Promise<ImportedPicture> {
  if (!path) return { value: null }
  const link = source.mediaUrl ? oldMediaUrl(source.mediaUrl, path) : null
  if (!source.mediaDir) return link ? { value: link } : { value: null, problem: 'not_kept' }
  const bytes = await readPicture(source.mediaDir, path)
  if (typeof bytes === 'string') return { value: link, problem: bytes }
  const picture = await normalisePicture(bytes, limits)
  if (typeof picture === 'string') return { value: link, problem: picture }
  const key = pictureKey(userId, picture.bytes, picture.type)
  return { value: key, upload: { key, bytes: picture.bytes, mime: picture.type.mime } }
}

async function readPicture(mediaDir: string, path: string): Promise<Uint8Array | PictureProblem> {
  const root = resolve(mediaDir)
  const file = resolve(root, path)
  // The path comes from the old database: it may name nothing outside the folder the operator gave.
  const inside = relative(root, file)
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) return 'unsafe_path'
  const bytes = await Bun.file(file).bytes().catch(() => undefined)
  return bytes ?? 'missing_file'
}

/** The URL Django's FileSystemStorage gave the file: MEDIA_URL joined with the path, each segment quoted. */
function oldMediaUrl(mediaUrl: string, path: string) {
  return `${mediaUrl.replace(/\/*$/, '/')}${path.split('/').map(encodeURIComponent).join('/')}`
}
