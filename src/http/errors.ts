import { Kind } from '@sinclair/typebox'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { Elysia, t, ValidationError } from 'elysia'
import { FieldErrors, ServiceError, type ErrorKind } from '../errors'
import type { Logger } from '../logger'
import { characterCount } from './formats'

/**
 * The one table from an error's kind to its HTTP status. Every feature's errors (users/errors.ts,
 * sessions/errors.ts, ...) name a kind and a code; nothing below the edge knows a status.
 */
const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported: 415,
  throttled: 429,
  unavailable: 503,
  // A service this one depends on answered, but not as it must (an identity provider's broken discovery).
  bad_gateway: 502,
}

// simplejwt's challenge on every 401, which the old clients expect.
const CHALLENGE = { 'www-authenticate': 'JWT realm="api"' }

export const ErrorBody = t.Object({ detail: t.String(), code: t.String() }, { description: 'An error with a stable snake_case code' })
export const FieldErrorsBody = t.Record(t.String(), t.Array(t.String()), {
  description: 'Messages keyed by field name (DRF style)',
})

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers })

/** The response of a feature's error: its kind's status, `{detail, code}`, and the headers that kind calls for. */
export function errorResponse(error: ServiceError): Response {
  const headers: Record<string, string> = error.kind === 'unauthenticated' ? { ...CHALLENGE } : {}
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds)
  return json(STATUS[error.kind], { ...error.extra, detail: error.detail, code: error.code }, headers)
}

/** Renders every error in the contract's shapes; nothing else ever reaches a client. */
export const errorsPlugin = (logger: Logger) =>
  new Elysia({ name: 'errors' }).onError({ as: 'global' }, ({ code, error, request, set }) => {
    const response = render(code, error)
    if (response.status === 500) logger.error({ err: error, method: request.method, url: request.url }, 'unhandled error')
    // The access log and the metrics read the status from here once the response has gone.
    set.status = response.status
    return response
  })

const notFound = new ServiceError('not_found', 'not_found', 'Not found.')

function render(code: string | number, error: unknown): Response {
  // Matched by class, not by `code`: a plugin's registered error codes do not reach every scope.
  const cause = code === 'PARSE' && error instanceof Error ? error.cause : error
  // Drizzle wraps a failed query's error (a database UnavailableError, say) in one of its own.
  const known = serviceErrorIn(cause)
  if (known) return errorResponse(known)
  if (cause instanceof FieldErrors) return json(400, cause.fields)
  if (code === 'VALIDATION' && error instanceof ValidationError && error.type !== 'response')
    // A malformed path parameter names no resource: DRF's uuid converter answers 404 too.
    return error.type === 'params' ? errorResponse(notFound) : json(400, fieldMessages(error))
  if (code === 'PARSE') return errorResponse(new ServiceError('invalid', 'parse_error', 'JSON parse error: the request body is not valid JSON.'))
  if (code === 'NOT_FOUND') return errorResponse(notFound)
  return json(500, { detail: 'Internal server error.', code: 'server_error' })
}

function serviceErrorIn(error: unknown): ServiceError | undefined {
  for (let depth = 0; error instanceof Error && depth < 5; depth++, error = error.cause)
    if (error instanceof ServiceError) return error
  return undefined
}

function fieldMessages(error: Pick<ValidationError, 'all'>): Record<string, string[]> {
  const fields: Record<string, string[]> = {}
  for (const issue of error.all as ValueError[]) {
    const field = issue.path.split('/')[1] || 'non_field_errors'
    fields[field] ??= [drfMessage(issue)]
  }
  return Object.keys(fields).length ? fields : { non_field_errors: ['Invalid data.'] }
}

// DRF's wording, which the old frontend shows as is.
function drfMessage(issue: ValueError): string {
  const { schema } = issue
  // A missing field fails as a type error on `undefined`; "required" is the message that helps.
  if (issue.value === undefined) return 'This field is required.'
  switch (issue.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'This field is required.'
    case ValueErrorType.StringMinLength:
      return tooShort(schema.minLength)
    case ValueErrorType.StringMaxLength:
      return tooLong(schema.maxLength)
    case ValueErrorType.Kind:
      if (schema[Kind] !== 'Text') return issue.message
      if (typeof issue.value !== 'string') return 'Not a valid string.'
      return characterCount(issue.value) < schema.minLength ? tooShort(schema.minLength) : tooLong(schema.maxLength)
    case ValueErrorType.StringFormat:
      return schema.format === 'email' ? 'Enter a valid email address.' : `Enter a valid ${schema.format}.`
    case ValueErrorType.String:
      return 'Not a valid string.'
    case ValueErrorType.StringPattern:
      return typeof schema.error === 'string' ? schema.error : 'Enter a valid value.'
    default:
      return issue.message
  }
}

const tooShort = (minLength: number) =>
  minLength === 1 ? 'This field may not be blank.' : `Ensure this field has at least ${minLength} characters.`
const tooLong = (maxLength: number) => `Ensure this field has no more than ${maxLength} characters.`
