import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { and, eq } from 'drizzle-orm'
import S3rver from 's3rver'
import sharp from 'sharp'
import { outboxEvents } from '../src/events/table'
import { createS3FileStore } from '../src/storage/files'
import { normalisePicture } from '../src/users/picture'
import { createTestApp, type TestApp } from './support/app'
import { animatedGif, bigPng, gif, jpeg, jpegThenScript, photoWithExif, png, pngBomb, webp, webpThenHtml } from './support/images'

const PICTURE_LIMIT = 64 * 1024

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

/** The stored file behind a picture URL of the local store. */
const storedFile = (url: string) => Bun.file(join(t.mediaDir, mediaPath(url).replace('/api/users/media/', ''))).bytes()

describe('profile pictures', () => {
  test.each([
    ['JPEG', jpeg()],
    ['PNG', png()],
    ['WebP', webp()],
    ['GIF', gif()],
  ] as const)('a %s upload is re-encoded as WebP, stored under a name made of the user id and its hash, and served back', async (_, bytes) => {
    const user = await t.registerUser()
    // The declared name and type are ignored: the bytes decide.
    const response = await form({ profile_pic: file(new Uint8Array(bytes), '../../evil name.txt', 'text/plain') }, user.access)
    expect(response.status).toBe(200)
    const url: string = response.body.profile_pic
    expect(url).toMatch(new RegExp(`^http://users\\.test/api/users/media/profile-pics/${user.id}/[0-9a-f]{32}\\.webp$`))

    const served = await t.app.handle(new Request(`http://localhost${mediaPath(url)}`))
    expect(served.status).toBe(200)
    expect(served.headers.get('content-type')).toBe('image/webp')
    expect(served.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(served.headers.get('x-content-type-options')).toBe('nosniff')
    const body = new Uint8Array(await served.arrayBuffer())
    const hash = new Bun.CryptoHasher('sha256').update(body).digest('hex').slice(0, 32)
    expect(url).toEndWith(`/${hash}.webp`)
    // A 1×1 picture stays 1×1: nothing is enlarged.
    expect(await sharp(body).metadata()).toMatchObject({ format: 'webp', width: 1, height: 1 })
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
    // `new Request` resolves `..` and `%2e%2e` segments before routing; an encoded slash reaches the router as sent.
    const encoded = ['/api/users/media/..%2f..%2fsecret_key', '/api/users/media/profile-pics%2f..%2f..%2fsecret_key', '/api/users/media/%2e%2e%2f%2e%2e%2fsecret_key']
    for (const path of encoded) expect(new URL(`http://localhost${path}`).pathname).toBe(path)
    for (const path of [
      ...encoded,
      '/api/users/media/../../secret_key',
      `/api/users/media/profile-pics/${user.id}/${'0'.repeat(32)}.png`,
      '/api/users/media/profile-pics/x/y.png',
      '/api/users/media/',
    ]) {
      const response = await t.app.handle(new Request(`http://localhost${path}`))
      expect(response.status).toBe(404)
    }
  })
})

describe('hostile and private pictures', () => {
  /** Uploads `bytes` for a new user and expects the refusal, with nothing stored and the profile unchanged. */
  async function expectRefused(bytes: Uint8Array, status: number, code: string) {
    const user = await t.registerUser()
    const started = performance.now()
    const response = await form({ profile_pic: file(bytes, 'p.png', 'image/png') }, user.access)
    const elapsed = performance.now() - started
    expect(response.status).toBe(status)
    expect(response.body).toEqual({ detail: expect.any(String), code })
    expect(storedFiles(join(t.mediaDir, 'profile-pics', user.id))).toHaveLength(0)
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.profile_pic).toBeNull()
    return elapsed
  }

  test('a PNG of a few bytes declaring 50,000 × 50,000 pixels is refused with 413 at once, never decoded', async () => {
    const bomb = pngBomb(50_000, 50_000)
    expect(bomb.length).toBeLessThan(100)
    const elapsed = await expectRefused(bomb, 413, 'image_too_large')
    // Decoding 2.5 gigapixels would take minutes and 7.5 GB; reading the header takes milliseconds.
    expect(elapsed).toBeLessThan(2000)
  })

  test('a JPEG header followed by a script is refused with 415 and not stored', async () => {
    await expectRefused(jpegThenScript(), 415, 'invalid_image')
  })

  test('a WebP header followed by HTML is refused with 415 and not stored', async () => {
    await expectRefused(webpThenHtml(), 415, 'invalid_image')
  })

  test('EXIF (GPS position, camera serial) and ICC are gone from the stored file', async () => {
    const photo = await photoWithExif()
    const sent = await sharp(photo).metadata()
    // The upload really carries them: the GPS IFD pointer (tag 0x8825, little-endian), the serial, an ICC profile.
    expect(Buffer.from(sent.exif!).includes(Buffer.from([0x25, 0x88]))).toBe(true)
    expect(Buffer.from(sent.exif!).includes('SN-0123456789')).toBe(true)
    expect(sent.icc).toBeDefined()

    const user = await t.registerUser()
    const response = await form({ profile_pic: file(photo, 'holiday.jpg', 'image/jpeg') }, user.access)
    expect(response.status).toBe(200)
    const stored = await storedFile(response.body.profile_pic)
    const kept = await sharp(stored).metadata()
    expect(kept.format).toBe('webp')
    expect(kept.exif).toBeUndefined()
    expect(kept.xmp).toBeUndefined()
    expect(kept.icc).toBeUndefined()
    expect(kept.iptc).toBeUndefined()
    for (const text of ['Exif', 'TestCam', 'Spy 3000', 'SN-0123456789']) expect(Buffer.from(stored).includes(text)).toBe(false)
  })

  test('the EXIF orientation is applied to the pixels', async () => {
    // Stored 64 × 32, left half red, right half blue, with "turn 90° clockwise": upright it is 32 × 64, red on top.
    const user = await t.registerUser()
    const response = await form({ profile_pic: file(await photoWithExif(64, 32, 6), 'p.jpg', 'image/jpeg') }, user.access)
    const stored = sharp(await storedFile(response.body.profile_pic))
    const meta = await stored.metadata()
    expect(meta).toMatchObject({ width: 32, height: 64 })
    expect(meta.orientation).toBeUndefined()
    const { data } = await stored.raw().toBuffer({ resolveWithObject: true })
    const pixel = (x: number, y: number) => [...data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)]
    const [top, bottom] = [pixel(16, 8), pixel(16, 56)]
    expect(top[0]).toBeGreaterThan(200)
    expect(top[2]).toBeLessThan(60)
    expect(bottom[2]).toBeGreaterThan(200)
    expect(bottom[0]).toBeLessThan(60)
  })

  test('a large picture is shrunk to fit 1024 × 1024, keeping its proportions and its transparency', async () => {
    const user = await t.registerUser()
    const response = await form({ profile_pic: file(await bigPng(3000, 1500, 128), 'wide.png', 'image/png') }, user.access)
    expect(response.status).toBe(200)
    const stored = sharp(await storedFile(response.body.profile_pic))
    expect(await stored.metadata()).toMatchObject({ format: 'webp', width: 1024, height: 512, hasAlpha: true })
    const { data } = await stored.raw().toBuffer({ resolveWithObject: true })
    expect(Math.abs(data[3]! - 128)).toBeLessThan(8)
  })

  test('an animated GIF is stored still, as its first frame', async () => {
    const user = await t.registerUser()
    const animated = await animatedGif()
    expect((await sharp(animated).metadata()).pages).toBe(2)
    const response = await form({ profile_pic: file(animated, 'a.gif', 'image/gif') }, user.access)
    expect(response.status).toBe(200)
    const stored = sharp(await storedFile(response.body.profile_pic))
    const meta = await stored.metadata()
    expect(meta.pages ?? 1).toBe(1)
    const { data } = await stored.raw().toBuffer({ resolveWithObject: true })
    expect(data[0]).toBeGreaterThan(200)
    expect(data[2]).toBeLessThan(60)
  })

  test('the pixel bound counts width × height from the header', async () => {
    const limits = { maxPixels: 1_000_000, maxSide: 64 }
    expect(await normalisePicture(await bigPng(1001, 1000), limits)).toBe('too_large')
    expect(await normalisePicture(await bigPng(1000, 1000), limits)).toMatchObject({ type: { mime: 'image/webp' } })
  })

  test('pictures are decoded off the event loop, which keeps turning meanwhile', async () => {
    const user = await t.registerUser()
    const big = await bigPng(3000, 1500)
    let last = performance.now()
    let longestGap = 0
    const ticker = setInterval(() => {
      const now = performance.now()
      longestGap = Math.max(longestGap, now - last)
      last = now
    }, 5)
    const started = performance.now()
    const uploads = await Promise.all(Array.from({ length: 6 }, () => form({ profile_pic: file(big, 'big.png', 'image/png') }, user.access)))
    const took = performance.now() - started
    clearInterval(ticker)
    for (const upload of uploads) expect(upload.status).toBe(200)
    // Six 4.5-megapixel pictures take about a second here; on the event loop, each would stop it for ~200 ms.
    expect(took).toBeGreaterThan(4 * longestGap)
    expect(longestGap).toBeLessThan(150)
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
    expect(first).toMatch(new RegExp(`^${endpoint}/pictures/profile-pics/${user.id}/[0-9a-f]{32}\\.webp$`))
    const object = await fetch(first)
    expect(object.status).toBe(200)
    expect(object.headers.get('content-type')).toBe('image/webp')
    expect(await sharp(await object.arrayBuffer()).metadata()).toMatchObject({ format: 'webp', width: 1, height: 1 })

    const second = (await form({ profile_pic: file(png(4, 5, 6), 'b.png', 'image/png') }, user.access, 'PATCH', s3)).body.profile_pic
    expect((await fetch(second)).status).toBe(200)
    expect((await fetch(first)).status).toBe(404)

    await s3.call('DELETE', `/api/users/${user.id}/`, { token: user.access })
    expect((await fetch(second)).status).toBe(404)
  })
})
