import { Elysia } from 'elysia'
import { ApiError, FieldErrors } from './errors'

export type BodyLimits = { jsonBytes: number; multipartBytes: number }

const tooLarge = (maxBytes: number) =>
  new ApiError(413, 'request_too_large', `The request body is larger than ${maxBytes} bytes.`)

const mediaTypeOf = (contentType: string | null) => (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase()

/**
 * JSON bodies, and multipart forms (the old frontend's profile form), each with its own size limit:
 * anything else, or anything larger, is a 4xx before a handler runs.
 */
export const requestBodies = (limits: BodyLimits) =>
  new Elysia({ name: 'request-bodies', seed: limits })
    // A declared length over the limit is refused before the body is read.
    .onRequest(({ request }) => {
      const limit = mediaTypeOf(request.headers.get('content-type')) === 'multipart/form-data' ? limits.multipartBytes : limits.jsonBytes
      if (Number(request.headers.get('content-length') ?? 0) > limit) throw tooLarge(limit)
    })
    .onParse({ as: 'global' }, async ({ request, contentType }) => {
      const mediaType = mediaTypeOf(contentType)
      // A bodiless request (a DELETE, say) has nothing to parse.
      if (mediaType === '' && request.body === null) return
      // Elysia's own parser reads forms; the server's maxRequestBodySize bounds an undeclared length.
      if (mediaType === 'multipart/form-data') return
      if (mediaType !== 'application/json')
        throw new ApiError(415, 'unsupported_media_type', `Unsupported media type "${mediaType}" in request.`)
      const text = await request.text()
      // A chunked body declares no length, so its real size is checked too.
      if (text.length > limits.jsonBytes) throw tooLarge(limits.jsonBytes)
      if (text.trim() === '') return {}
      const body: unknown = JSON.parse(text)
      // Validation would report each field missing from a list; DRF's message says what is wrong.
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new FieldErrors({ non_field_errors: [`Invalid data. Expected a dictionary, but got ${jsonTypeName(body)}.`] })
      return body
    })

/** The largest body the server accepts at all (Bun.serve's maxRequestBodySize). */
export const largestBody = (limits: BodyLimits) => Math.max(limits.jsonBytes, limits.multipartBytes)

const jsonTypeName = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'list' : typeof value === 'string' ? 'str' : typeof value
