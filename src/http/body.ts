import { Elysia } from 'elysia'
import { FieldErrors, ServiceError } from '../errors'
import { isUuid } from './formats'

export type BodyLimits = { jsonBytes: number; multipartBytes: number }

/**
 * The deepest JSON a body may hold (the top-level object is depth 1). Our bodies are flat; the bound
 * keeps validation, error rendering and every other walk of the value linear and off the stack limit.
 */
export const MAX_JSON_DEPTH = 32

const tooLarge = (maxBytes: number) =>
  new ServiceError('too_large', 'request_too_large', `The request body is larger than ${maxBytes} bytes.`)

const notJson = (reason: string) => new ServiceError('invalid', 'parse_error', `JSON parse error: ${reason}`)

const mediaTypeOf = (contentType: string | null) => (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase()

// Fatal: a byte sequence that is not UTF-8 is refused, not silently turned into U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The one place that reads what a client sends. JSON bodies and multipart forms (the old frontend's
 * profile form), each with its own size limit, depth-bounded and read by us rather than by Elysia's
 * form parser (which JSON-parses any part starting with `{` or `[`); every string of a body or query
 * is refused when it holds a NUL or an unpaired surrogate; UUIDs in paths are lower-cased.
 * Anything else, or anything larger, is a 4xx before a handler runs.
 */
export const requestBodies = (limits: BodyLimits) =>
  new Elysia({ name: 'request-bodies', seed: limits })
    // A declared length over the limit is refused before the body is read. Most requests (every GET)
    // declare none: they skip the content-type parse; a chunked body is bounded in onParse instead.
    .onRequest(({ request }) => {
      const length = request.headers.get('content-length')
      if (length === null) return
      const limit = limitFor(limits, request.headers.get('content-type'))
      if (Number(length) > limit) throw tooLarge(limit)
    })
    .onParse({ as: 'global' }, async ({ request, contentType }) => {
      const mediaType = mediaTypeOf(contentType)
      // A bodiless request (a DELETE, say) has nothing to parse.
      if (mediaType === '' && request.body === null) return
      if (mediaType !== 'application/json' && mediaType !== 'multipart/form-data')
        throw new ServiceError('unsupported', 'unsupported_media_type', `Unsupported media type "${mediaType}" in request.`)
      // A chunked body declares no length: it is read up to the limit and no further.
      const bytes = await readUpTo(request, limitFor(limits, contentType))
      const body = mediaType === 'application/json' ? parseJson(bytes) : await parseForm(bytes, request.headers.get('content-type')!)
      refuseBadStrings(body)
      return body
    })
    .onTransform({ as: 'global' }, ({ params, query }) => {
      if (query) refuseBadStrings(query)
      // A UUID names the same user or session in any case: everything downstream sees one spelling.
      // (Other bad path values fail their route's schema: a 404, as a path that names nothing.)
      if (params) for (const [key, value] of Object.entries(params)) if (isUuid(value)) params[key] = value!.toLowerCase()
    })

/** The largest body the server lets through to the app: any size, so that the app's own limits always answer in JSON. */
export const SERVER_BODY_LIMIT = Number.MAX_SAFE_INTEGER

const limitFor = (limits: BodyLimits, contentType: string | null) =>
  mediaTypeOf(contentType) === 'multipart/form-data' ? limits.multipartBytes : limits.jsonBytes

async function readUpTo(request: Request, limit: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array()
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    throw notJson('the request body is not valid UTF-8.')
  }
  if (text.trim() === '') return {}
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw notJson(`the request body is nested deeper than ${MAX_JSON_DEPTH} levels.`)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw notJson('the request body is not valid JSON.')
  }
  // Validation would report each field missing from a list; DRF's message says what is wrong.
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new FieldErrors({ non_field_errors: [`Invalid data. Expected a dictionary, but got ${jsonTypeName(body)}.`] })
  return body as Record<string, unknown>
}

/**
 * The deepest nesting of `[` and `{` outside strings, in one pass over the text and before anything
 * parses it: malformed text gets some figure, and JSON.parse refuses it afterwards.
 */
export function jsonDepth(text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 0x5c) i++ // a backslash: the next character is escaped
      else if (code === 0x22) inString = false
    } else if (code === 0x22) inString = true
    else if (code === 0x7b || code === 0x5b) deepest = Math.max(deepest, ++depth)
    else if (code === 0x7d || code === 0x5d) depth--
  }
  return deepest
}

// Keys that would reach an object's prototype; they name no field of ours, so they are dropped.
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** Parts as strings and Files, never JSON-parsed; a repeated name becomes a list (which then fails validation). */
async function parseForm(bytes: Uint8Array, contentType: string): Promise<Record<string, unknown>> {
  const form = await new Response(bytes, { headers: { 'content-type': contentType } }).formData().catch(() => {
    throw new ServiceError('invalid', 'parse_error', 'Multipart form parse error: the request body is not a valid form.')
  })
  const body: Record<string, unknown> = {}
  for (const [key, value] of form.entries()) {
    if (PROTOTYPE_KEYS.has(key)) continue
    const previous = body[key]
    body[key] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value]
  }
  return body
}

/**
 * DRF's validators for every string field: a NUL would fail in Postgres (a 500) and an unpaired
 * surrogate would be replaced by U+FFFD on the way to the database (two passwords becoming one).
 * Strings at any depth count, reported under their top-level field. The depth is already bounded.
 */
function refuseBadStrings(values: Record<string, unknown>) {
  const fields: Record<string, string[]> = {}
  for (const [key, value] of Object.entries(values)) {
    const problem = badString(key) ?? firstBadString(value)
    if (problem) fields[badString(key) ? 'non_field_errors' : key] ??= [problem]
  }
  if (Object.keys(fields).length) throw new FieldErrors(fields)
}

function firstBadString(value: unknown): string | undefined {
  if (typeof value === 'string') return badString(value)
  if (typeof value !== 'object' || value === null || value instanceof Blob) return undefined
  for (const [key, inner] of Object.entries(value)) {
    const problem = badString(key) ?? firstBadString(inner)
    if (problem) return problem
  }
  return undefined
}

function badString(value: string): string | undefined {
  if (value.includes('\0')) return 'Null characters are not allowed.'
  if (value.isWellFormed()) return undefined
  const lone = [...value].find((char) => char.length === 1 && char.charCodeAt(0) >= 0xd800 && char.charCodeAt(0) <= 0xdfff)!
  return `Surrogate characters are not allowed: U+${lone.charCodeAt(0).toString(16).toUpperCase()}.`
}

const jsonTypeName = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'list' : typeof value === 'string' ? 'str' : typeof value
