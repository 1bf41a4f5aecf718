import { browserGlobal } from './globals'

/** The service answered with an error: its status, and the contract's `{detail, code}` or field errors. */
export type HttpError = {
  kind: 'http'
  status: number
  /** The service's snake_case code (`token_not_valid`, `throttled`, `service_unavailable`, ...), when it sent one. */
  code?: string
  detail?: string
  /** A 400's messages by field, as a form shows them: `{"email": ["..."]}`. */
  fields?: Record<string, string[]>
  /** Seconds to wait, from `Retry-After` (a 429, a 503). */
  retryAfter?: number
  body: unknown
}

/**
 * No answer could be read. `network`: the service could not be reached. `cors`: it answered but the browser
 * withheld the answer (the page's origin is not in the service's CORS_ALLOWED_ORIGINS). `timeout`: the client gave up
 * after its `timeoutMs`. `aborted`: the caller's own AbortSignal ended the request.
 */
export type TransportError = { kind: 'network' | 'cors' | 'timeout' | 'aborted'; detail: string }

export type ClientError = HttpError | TransportError

/** What every call returns: switch on `ok`, then on `error.kind`. Nothing is thrown for an expected failure. */
export type Result<T> = { ok: true; data: T } | { ok: false; error: ClientError }

export type Fetcher = (url: string, init: RequestInit) => Promise<Response>

export const ok = <T>(data: T): Result<T> => ({ ok: true, data })
export const failed = (error: ClientError): { ok: false; error: ClientError } => ({ ok: false, error })

/** Whether a result is the service's answer `status`, optionally with `code`. */
export const isHttp = (result: Result<unknown>, status: number, code?: string) =>
  !result.ok && result.error.kind === 'http' && result.error.status === status && (code === undefined || result.error.code === code)

/**
 * Sends one request and reads its answer, telling apart the ways it can fail. A browser does not say why a
 * fetch failed (a refused connection and a CORS refusal are the same TypeError), so the same URL is probed
 * with `mode: 'no-cors'`: any answer, even an opaque one, means the service is there and CORS withheld it.
 * Outside a page or worker (a server) there is no CORS, and `mode` means nothing: a failure is the network's.
 */
export async function exchange(
  fetcher: Fetcher,
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<{ response: Response; body: unknown } | { error: TransportError }> {
  const caller = init.signal ?? undefined
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, timeoutMs)
  const forward = () => controller.abort()
  caller?.addEventListener('abort', forward)
  if (caller?.aborted) controller.abort()
  try {
    const response = await fetcher(url, { ...init, signal: controller.signal })
    return { response, body: await bodyOf(response) }
  } catch (error) {
    if (timedOut) return { error: { kind: 'timeout', detail: `No answer within ${timeoutMs} ms.` } }
    if (caller?.aborted) return { error: { kind: 'aborted', detail: 'The request was aborted.' } }
    return { error: await unreachable(fetcher, url, error) }
  } finally {
    clearTimeout(timer)
    caller?.removeEventListener('abort', forward)
  }
}

async function unreachable(fetcher: Fetcher, url: string, cause: unknown): Promise<TransportError> {
  const reason = cause instanceof Error ? cause.message : String(cause)
  const network: TransportError = { kind: 'network', detail: `The service could not be reached: ${reason}` }
  if (!browserGlobal('location')) return network
  try {
    await fetcher(url, { method: 'GET', mode: 'no-cors', cache: 'no-store', credentials: 'omit', signal: AbortSignal.timeout(5_000) })
    return { kind: 'cors', detail: `The service answered but the browser withheld the answer (is this origin in its CORS_ALLOWED_ORIGINS?): ${reason}` }
  } catch {
    return network
  }
}

async function bodyOf(response: Response): Promise<unknown> {
  const text = await response.text()
  if (!text) return undefined
  if (!(response.headers.get('content-type') ?? '').includes('json')) return text
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** The contract's error shapes: `{detail, code}`, or a 400 keyed by field. */
export function httpError(response: Response, body: unknown): HttpError {
  const error: HttpError = { kind: 'http', status: response.status, body }
  const retryAfter = Number(response.headers.get('retry-after') ?? NaN)
  if (Number.isFinite(retryAfter)) error.retryAfter = retryAfter
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const fields = body as Record<string, unknown>
    if (typeof fields.code === 'string') error.code = fields.code
    if (typeof fields.detail === 'string') error.detail = fields.detail
    if (response.status === 400 && error.code === undefined) error.fields = fields as Record<string, string[]>
  }
  return error
}
