import { deflateSync } from 'node:zlib'
import sharp from 'sharp'

// Tiny but valid images of each accepted format, made here rather than downloaded.

function pngChunk(type: string, data: Uint8Array) {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(Bun.hash.crc32(body))
  return Buffer.concat([length, body, crc])
}

/** A 1×1 RGB PNG of the given colour. */
export function png(red = 255, green = 0, blue = 0) {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(1, 0)
  header.writeUInt32BE(1, 4)
  header.set([8, 2, 0, 0, 0], 8)
  const pixels = deflateSync(Buffer.from([0, red, green, blue]))
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk('IHDR', header),
      pngChunk('IDAT', pixels),
      pngChunk('IEND', new Uint8Array()),
    ]),
  )
}

/** A 1×1 GIF89a. */
export const gif = () =>
  new Uint8Array([
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x21,
    0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44,
    0x01, 0x00, 0x3b,
  ])

/** A 1×1 JPEG, ended by its EOI marker (a truncated one is refused). */
export const jpeg = () =>
  Buffer.concat([
    Buffer.from(
      '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=',
      'base64',
    ),
    Buffer.from([0xff, 0xd9]),
  ])

/** A 1×1 lossless WebP. */
export const webp = () => Buffer.from('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==', 'base64')

// Hostile files: each starts with a real signature, so only decoding can tell them apart from pictures.

/** A PNG bomb: a valid header declaring `width` × `height` pixels, and almost no pixel data. */
export function pngBomb(width = 50_000, height = 50_000) {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header.set([8, 2, 0, 0, 0], 8)
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk('IHDR', header),
      pngChunk('IDAT', deflateSync(Buffer.alloc(16))),
      pngChunk('IEND', new Uint8Array()),
    ]),
  )
}

/** A JPEG's first bytes (SOI and the JFIF segment) followed by a script. */
export const jpegThenScript = () =>
  new Uint8Array(Buffer.concat([jpeg().subarray(0, 20), Buffer.from('<script>alert(document.cookie)</script>')]))

/** A WebP's RIFF header followed by HTML. */
export function webpThenHtml() {
  const html = Buffer.from('<html><body><script>alert(1)</script></body></html>')
  const size = Buffer.alloc(4)
  size.writeUInt32LE(4 + html.length)
  return new Uint8Array(Buffer.concat([Buffer.from('RIFF'), size, Buffer.from('WEBP'), html]))
}

/**
 * A camera photo as phones write them: `width` × `height` stored pixels, the left half red and the right half
 * blue, with EXIF naming the camera and where it was, and an orientation that says "turn me 90° clockwise".
 */
export async function photoWithExif(width = 64, height = 32, orientation = 6) {
  const half = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) half.set(x < width / 2 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3)
  const bytes = await sharp(half, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    // withMetadata writes the orientation (withExif alone would leave 1) and an sRGB ICC profile.
    .withMetadata({ orientation })
    .withExifMerge({
      IFD0: { Make: 'TestCam', Model: 'Spy 3000' },
      IFD2: { BodySerialNumber: 'SN-0123456789' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 30/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 40/1' },
    })
    .toBuffer()
  return new Uint8Array(bytes)
}

/** A PNG of `width` × `height` pixels of one colour, with an alpha channel. */
export const bigPng = async (width: number, height: number, alpha = 255) =>
  new Uint8Array(
    await sharp({ create: { width, height, channels: 4, background: { r: 10, g: 200, b: 30, alpha: alpha / 255 } } })
      .png({ compressionLevel: 9 })
      .toBuffer(),
  )

/** An animated GIF of 8 × 8 pixels: a red frame, then a blue one. */
export async function animatedGif() {
  const frame = (background: string) => sharp({ create: { width: 8, height: 8, channels: 3, background } }).png().toBuffer()
  const frames = [await frame('#ff0000'), await frame('#0000ff')]
  return new Uint8Array(await sharp(frames, { join: { animated: true } }).gif({ delay: [100, 100] }).toBuffer())
}
