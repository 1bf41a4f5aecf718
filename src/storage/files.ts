import { mkdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { S3Client, type BunFile } from 'bun'

/** Where profile pictures live: a local folder or an S3-compatible bucket, behind the same three calls. */
export type FileStore = {
  put(key: string, data: Uint8Array, contentType: string): Promise<void>
  /** Deleting a key that is not there is not an error. */
  delete(key: string): Promise<void>
  /** The absolute URL clients fetch the file from. */
  url(key: string): string
  /** The file itself, for stores the service serves (the local folder); S3 serves its own. */
  open?(key: string): BunFile
}

// Keys are made by the service (user id + content hash), never taken from a request; this is checked anyway.
const SAFE_KEY = /^[a-z0-9-]+(?:\/[a-z0-9-]+)*\.[a-z0-9]+$/

/** Whether a stored picture is a link (an imported picture left where it was) rather than a key of our store. */
export const isExternalPicture = (key: string) => /^https?:\/\//.test(key)

/** The URL of a stored picture; a link is kept as it is. */
export function pictureUrl(files: Pick<FileStore, 'url'>, key: string | null) {
  if (key === null) return null
  return isExternalPicture(key) ? key : files.url(key)
}

export function assertSafeKey(key: string) {
  if (!SAFE_KEY.test(key)) throw new Error(`unsafe storage key ${JSON.stringify(key)}`)
}

/** Files under `root`, served by the service itself at `${publicUrl}/api/users/media/<key>`. */
export function createLocalFileStore(root: string, publicUrl: string): FileStore {
  const path = (key: string) => {
    assertSafeKey(key)
    return join(root, key)
  }
  return {
    open: (key) => Bun.file(path(key)),
    async put(key, data) {
      await mkdir(dirname(path(key)), { recursive: true })
      await Bun.write(path(key), data)
    },
    async delete(key) {
      await rm(path(key), { force: true })
    },
    url: (key) => `${publicUrl}/api/users/media/${key}`,
  }
}

export type S3Settings = {
  bucket: string
  endpoint?: string
  region?: string
  accessKeyId?: string
  secretAccessKey?: string
  /** Base URL the bucket's objects are public at (a CDN, say); defaults to the endpoint's path-style URL. */
  publicUrl?: string
}

/** Any S3-compatible bucket through Bun's built-in client. */
export function createS3FileStore(settings: S3Settings): FileStore {
  const client = new S3Client({
    bucket: settings.bucket,
    endpoint: settings.endpoint,
    region: settings.region,
    accessKeyId: settings.accessKeyId,
    secretAccessKey: settings.secretAccessKey,
  })
  const base = settings.publicUrl ?? `${settings.endpoint ?? `https://${settings.bucket}.s3.amazonaws.com`}/${settings.endpoint ? `${settings.bucket}/` : ''}`
  return {
    async put(key, data, contentType) {
      assertSafeKey(key)
      await client.write(key, data, { type: contentType })
    },
    async delete(key) {
      assertSafeKey(key)
      await client.delete(key)
    },
    url: (key) => `${base.replace(/\/?$/, '/')}${key}`,
  }
}

/** The store the configuration chooses: the bucket when S3_BUCKET is set, the local folder otherwise. */
export function createFileStore(config: { dataDir: string; publicUrl: string; s3?: S3Settings }) {
  return config.s3 ? createS3FileStore(config.s3) : createLocalFileStore(join(config.dataDir, 'media'), config.publicUrl)
}
