import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { and, eq } from 'drizzle-orm'
import S3rver from 's3rver'
import { outboxEvents } from '../src/events/table'
import { createS3FileStore } from '../src/storage/files'
import { createTestApp, type TestApp } from './support/app'
import { gif, jpeg, png, webp } from './support/images'

const PICTURE_LIMIT = 4096

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ label: 'profiles', store: 'memory', env: { PROFILE_PIC_MAX_BYTES: String(PICTURE_LIMIT) } })
})
afterAll(() => t.close())

/** The old frontend's form: multipart with the fields as text and the picture as a file. */
function form(fields: Record<string, string | Blob>, token: string, method = 'PATCH', app: TestApp = t) {
  const body = new FormData()
  for (const [name, value] of Object.entries(fields)) body.append(name, value)
  return app.app
    .handle(new Request('http://localhost/api/users/update/', { method, headers: { authorization: `JWT ${token}` }, body }))
    .then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, any> }))
}

const file = (bytes: Uint8Array, name: string, type: string) => new File([bytes], name, { type })
const mediaPath = (url: string) => new URL(url).pathname
const storedFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true }).filter((entry) => String(entry).includes('.')) : [])

describe('profile pictures', () => {
  test.each([
    ['JPEG', jpeg(), 'jpg', 'image/jpeg'],
    ['PNG', png(), 'png', 'image/png'],
    ['WebP', webp(), 'webp', 'image/webp'],
    ['GIF', gif(), 'gif', 'image/gif'],
  ] as const)('a %s upload is stored under a name made of the user id and a content hash, and served back', async (_, bytes, extension, mime) => {
    const user = await t.registerUser()
    // The declared name and type are ignored: the bytes decide.
    const response = await form({ profile_pic: file(new Uint8Array(bytes), '../../evil name.txt', 'text/plain') }, user.access)
    expect(response.status).toBe(200)
    const url: string = response.body.profile_pic
    expect(url).toMatch(new RegExp(`^http://users\\.test/api/users/media/profile-pics/${user.id}/[0-9a-f]{32}\\.${extension}$`))

    const served = await t.app.handle(new Request(`http://localhost${mediaPath(url)}`))
    expect(served.status).toBe(200)
    expect(served.headers.get('content-type')).toBe(mime)
    expect(served.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(served.headers.get('x-content-type-options')).toBe('nosniff')
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(new Uint8Array(bytes))
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.profile_pic).toBe(url)
  })

  test('a text file renamed to .png is refused with 415 and changes nothing', async () => {
    const user = await t.registerUser()
    const response = await form({ profile_pic: file(new TextEncoder().encode('not an image at all'), 'photo.png', 'image/png') }, user.access)
    expect(response.status).toBe(415)
    expect(response.body).toEqual({ detail: 'profile_pic must be a JPEG, PNG, WebP or GIF image.', code: 'unsupported_media_type' })
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.profile_pic).toBeNull()
  })

  test('a file over the limit is a 413, whether or not the request declares its length', async () => {
    const user = await t.registerUser()
    const big = new Uint8Array(PICTURE_LIMIT + 1)
    big.set(png())
    const undeclared = await form({ profile_pic: file(big, 'big.png', 'image/png') }, user.access)
    expect(undeclared.status).toBe(413)
    expect(undeclared.body.code).toBe('request_too_large')

    // A declared length over the form limit is refused before the body is read.
    const declared = await t.app.handle(
      new Request('http://localhost/api/users/update/', {
        method: 'PATCH',
        headers: { authorization: `JWT ${user.access}`, 'content-type': 'multipart/form-data; boundary=x', 'content-length': String(10 * 1024 * 1024) },
        body: '--x--',
      }),
    )
    expect(declared.status).toBe(413)
  })

  test('a new picture gets a new URL and the old file is deleted', async () => {
    const user = await t.registerUser()
    const first = (await form({ profile_pic: file(png(255, 0, 0), 'a.png', 'image/png') }, user.access)).body.profile_pic
    const second = (await form({ profile_pic: file(png(0, 0, 255), 'b.png', 'image/png') }, user.access)).body.profile_pic
    expect(second).not.toBe(first)
    expect((await t.app.handle(new Request(`http://localhost${mediaPath(first)}`))).status).toBe(404)
    expect((await t.app.handle(new Request(`http://localhost${mediaPath(second)}`))).status).toBe(200)
    expect(storedFiles(join(t.mediaDir, 'profile-pics', user.id))).toHaveLength(1)
  })

  test('sending profile_pic empty in a form, or null in JSON, removes the picture and its file', async () => {
    const user = await t.registerUser()
    const folder = join(t.mediaDir, 'profile-pics', user.id)
    await form({ profile_pic: file(gif(), 'a.gif', 'image/gif') }, user.access)
    const emptied = await form({ profile_pic: '' }, user.access)
    expect(emptied.status).toBe(200)
    expect(emptied.body.profile_pic).toBeNull()
    expect(storedFiles(folder)).toHaveLength(0)

    await form({ profile_pic: file(gif(), 'a.gif', 'image/gif') }, user.access)
    const nulled = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { profile_pic: null } })
    expect(nulled.status).toBe(200)
    expect(nulled.body.profile_pic).toBeNull()
    expect(storedFiles(folder)).toHaveLength(0)
  })

  test('the form also carries the other fields, trimmed as in JSON', async () => {
    const user = await t.registerUser()
    const response = await form({ full_name: '  Form Name ', profile_pic: file(webp(), 'w.webp', 'image/webp') }, user.access, 'PUT')
    expect(response.status).toBe(200)
    expect(response.body.full_name).toBe('Form Name')
    expect(response.body.profile_pic).toEndWith('.webp')
  })

  test('deleting the account deletes its picture', async () => {
    const user = await t.registerUser()
    await form({ profile_pic: file(jpeg(), 'me.jpg', 'image/jpeg') }, user.access)
    expect(storedFiles(join(t.mediaDir, 'profile-pics', user.id))).toHaveLength(1)
    expect((await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })).status).toBe(204)
    expect(storedFiles(join(t.mediaDir, 'profile-pics', user.id))).toHaveLength(0)
  })

  test('a picture change emits user.updated with the absolute URL', async () => {
    const user = await t.registerUser()
    const url = (await form({ profile_pic: file(png(), 'p.png', 'image/png') }, user.access)).body.profile_pic
    const events = await t.deps.db
      .select()
      .from(outboxEvents)
      .where(and(eq(outboxEvents.userId, user.id), eq(outboxEvents.name, 'user.updated')))
    expect(events.map((event) => event.payload)).toEqual([{ id: user.id, email: user.email, email_verified: false, full_name: user.full_name, profile_pic: url }])
  })

  test('the media route answers 404 for anything that is not a stored picture', async () => {
    const user = await t.registerUser()
    for (const path of [
      '/api/users/media/../../secret_key',
      '/api/users/media/%2e%2e/%2e%2e/secret_key',
      `/api/users/media/profile-pics/${user.id}/${'0'.repeat(32)}.png`,
      '/api/users/media/profile-pics/x/y.png',
      '/api/users/media/',
    ]) {
      const response = await t.app.handle(new Request(`http://localhost${path}`))
      expect(response.status).toBe(404)
    }
  })
})

describe('profile pictures in an S3-compatible bucket (s3rver, a local S3 server from npm)', () => {
  const dir = mkdtempSync(join(tmpdir(), 's3rver-'))
  let server: S3rver
  let s3: TestApp
  let endpoint: string
  beforeAll(async () => {
    server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'pictures', configs: [] }] })
    const { port } = await server.run()
    endpoint = `http://127.0.0.1:${port}`
    const files = createS3FileStore({ bucket: 'pictures', endpoint, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' })
    s3 = await createTestApp({ label: 'profiles_s3', store: 'memory', files })
  })
  afterAll(async () => {
    await s3.close()
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('an upload lands in the bucket at its public URL, and a replacement deletes the old object', async () => {
    const user = await s3.registerUser()
    const first = (await form({ profile_pic: file(png(1, 2, 3), 'a.png', 'image/png') }, user.access, 'PATCH', s3)).body.profile_pic
    expect(first).toMatch(new RegExp(`^${endpoint}/pictures/profile-pics/${user.id}/[0-9a-f]{32}\\.png$`))
    const object = await fetch(first)
    expect(object.status).toBe(200)
    expect(new Uint8Array(await object.arrayBuffer())).toEqual(png(1, 2, 3))

    const second = (await form({ profile_pic: file(png(4, 5, 6), 'b.png', 'image/png') }, user.access, 'PATCH', s3)).body.profile_pic
    expect((await fetch(second)).status).toBe(200)
    expect((await fetch(first)).status).toBe(404)

    await s3.call('DELETE', `/api/users/${user.id}/`, { token: user.access })
    expect((await fetch(second)).status).toBe(404)
  })
})
