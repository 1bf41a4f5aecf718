import { isAbsolute, relative, resolve } from 'node:path'
import { pictureKey, sniffImage } from '../users/picture'

/** Where the old service's pictures are: its MEDIA_ROOT copied here (`--media`), or its MEDIA_URL (`--media-url`). */
export type PictureSource = { mediaDir?: string; mediaUrl?: string }

/** Why an old picture was not copied into our storage. */
// `missing_file` covers a file that is there but cannot be read (a folder, no permission).
export type PictureProblem = 'not_kept' | 'unsafe_path' | 'missing_file' | 'not_an_image'

/** What an imported user's `profile_pic` becomes: a storage key (with the bytes to store), a link, or null. */
export type ImportedPicture = {
  value: string | null
  upload?: { key: string; bytes: Uint8Array; mime: string }
  problem?: PictureProblem
}

/**
 * The picture of one old user, from the ImageField's value (a path relative to MEDIA_ROOT, '' for none).
 * A file that cannot be copied falls back to its old URL when `mediaUrl` is given.
 */
export async function importPicture(source: PictureSource, userId: string, path: string | null): Promise<ImportedPicture> {
  if (!path) return { value: null }
  const link = source.mediaUrl ? oldMediaUrl(source.mediaUrl, path) : null
  if (!source.mediaDir) return link ? { value: link } : { value: null, problem: 'not_kept' }
  const copied = await readPicture(source.mediaDir, path)
  if (typeof copied === 'string') return { value: link, problem: copied }
  const key = pictureKey(userId, copied.bytes, copied.type)
  return { value: key, upload: { key, bytes: copied.bytes, mime: copied.type.mime } }
}

async function readPicture(mediaDir: string, path: string) {
  const root = resolve(mediaDir)
  const file = resolve(root, path)
  // The path comes from the old database: it may name nothing outside the folder the operator gave.
  const inside = relative(root, file)
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) return 'unsafe_path'
  const bytes = await Bun.file(file).bytes().catch(() => undefined)
  if (!bytes) return 'missing_file'
  const type = sniffImage(bytes)
  return type ? { bytes, type } : 'not_an_image'
}

/** The URL Django's FileSystemStorage gave the file: MEDIA_URL joined with the path, each segment quoted. */
function oldMediaUrl(mediaUrl: string, path: string) {
  return `${mediaUrl.replace(/\/*$/, '/')}${path.split('/').map(encodeURIComponent).join('/')}`
}
