import { Elysia } from 'elysia'
import { ApiError, FieldErrors } from './errors'

const tooLarge = (maxBytes: number) =>
  new ApiError(413, 'request_too_large', `The request body is larger than ${maxBytes} bytes.`)

/** JSON bodies only, at most `maxBytes`: anything else is a 4xx before a handler runs. */
export const jsonBodies = (maxBytes: number) =>
  new Elysia({ name: 'json-bodies', seed: maxBytes })
    // A declared length over the limit is refused before the body is read.
    .onRequest(({ request }) => {
      if (Number(request.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge(maxBytes)
    })
    .onParse({ as: 'global' }, async ({ request, contentType }) => {
      const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase()
      // A bodiless request (a DELETE, say) has nothing to parse.
      if (mediaType === '' && request.body === null) return
      if (mediaType !== 'application/json')
        throw new ApiError(415, 'unsupported_media_type', `Unsupported media type "${mediaType}" in request.`)
      const text = await request.text()
      // A chunked body declares no length, so its real size is checked too.
      if (text.length > maxBytes) throw tooLarge(maxBytes)
      if (text.trim() === '') return {}
      const body: unknown = JSON.parse(text)
      // Validation would report each field missing from a list; DRF's message says what is wrong.
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new FieldErrors({ non_field_errors: [`Invalid data. Expected a dictionary, but got ${jsonTypeName(body)}.`] })
      return body
    })

const jsonTypeName = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'list' : typeof value === 'string' ? 'str' : typeof value
