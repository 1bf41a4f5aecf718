/**
 * What went wrong, in words a service can say without knowing HTTP. The edge (http/errors.ts) gives
 * each kind its status and headers in one table; a feature names its own errors with these.
 */
export type ErrorKind =
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'too_large'
  | 'unsupported'
  | 'invalid'
  | 'conflict'
  | 'throttled'
  | 'unavailable'
  | 'bad_gateway'

/**
 * An expected failure: its kind, a stable snake_case code and a message, both public; `retryAfterSeconds`
 * when waiting helps; `extra`, public fields the answer carries beside `detail` and `code` (a login's
 * `mfa_token`, say).
 */
export class ServiceError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    readonly detail: string,
    readonly retryAfterSeconds?: number,
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail)
  }
}

/** Invalid input keyed by field name, each with a list of messages (DRF's shape, which the frontend maps onto its form). */
export class FieldErrors extends Error {
  constructor(readonly fields: Record<string, string[]>) {
    super('invalid input')
  }
}

export const fieldError = (field: string, message: string) => new FieldErrors({ [field]: [message] })

/** Too many attempts: the code `throttled`, and when to come back. */
export const throttled = (retryAfterSeconds: number) =>
  new ServiceError('throttled', 'throttled', `Request was throttled. Expected available in ${retryAfterSeconds} seconds.`, retryAfterSeconds)

/** A backing service did not answer: the request fails whole, and the client may retry in a second. */
export class UnavailableError extends ServiceError {
  constructor(what: string, cause?: unknown) {
    super('unavailable', 'service_unavailable', `The ${what} is unavailable; try again shortly.`, 1)
    this.cause = cause
  }
}
