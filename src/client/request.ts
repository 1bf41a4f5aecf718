import { exchange, failed, httpError, ok, type Fetcher, type Result } from './result'
import type { TokenStorage } from './storage'
import { expiryOf } from './tokens'
import type { TokenPair } from './types'

/** Options of one call: an AbortSignal, or headers (an `authorization` of the caller's own is sent untouched). */
export type CallOptions = { signal?: AbortSignal; headers?: Record<string, string> }

/** One request to the service, its path under `/api/users`; `auth` sends it with the session's access token. */
export type Request = { method: string; path: string; body?: unknown; query?: Record<string, unknown>; auth: boolean; options?: CallOptions }

/** The absolute URL of a path under `/api/users`. */
export const apiUrl = (baseUrl: string, path: string) => `${baseUrl.replace(/\/+$/, '')}/api/users${path}`

/** Sends a request with `access` (if any) and reads the answer as a result; no token plumbing. */
export function sender({ baseUrl, fetcher, timeoutMs, scheme }: { baseUrl: string; fetcher: Fetcher; timeoutMs: number; scheme: string }) {
  return async <Data>(request: Request, access?: string): Promise<Result<Data>> => {
    const headers: Record<string, string> = { ...request.options?.headers }
    if (access && !hasAuthorization(headers)) headers.authorization = `${scheme} ${access}`
    let body: RequestInit['body']
    if (request.body instanceof FormData) body = request.body
    else if (request.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(request.body)
    }
    const init: RequestInit = { method: request.method, headers, body }
    if (request.options?.signal) init.signal = request.options.signal
    const answer = await exchange(fetcher, `${apiUrl(baseUrl, request.path)}${queryString(request.query)}`, init, timeoutMs)
    if ('error' in answer) return failed(answer.error)
    return answer.response.ok ? ok(answer.body as Data) : failed(httpError(answer.response, answer.body))
  }
}

export type Send = ReturnType<typeof sender>
export type Call = <Data>(request: Request) => Promise<Result<Data>>

/** Calls with the session's access token: refreshed first when it expires soon, and once more after a 401. */
export function authorizingCall({
  send,
  storage,
  refresh,
  refreshSkewSeconds,
  now,
}: {
  send: Send
  storage: TokenStorage
  refresh: (stale: TokenPair) => Promise<Result<TokenPair>>
  refreshSkewSeconds: number
  now: () => number
}): Call {
  const expiresSoon = (access: string) => {
    // An access token not known (kept in memory only, before a reload) is refreshed before use.
    if (!access) return true
    const exp = expiryOf(access)
    return exp !== null && (exp - refreshSkewSeconds) * 1000 <= now()
  }
  return async <Data>(request: Request): Promise<Result<Data>> => {
    if (!request.auth || hasAuthorization(request.options?.headers ?? {})) return send<Data>(request)
    let pair = storage.get()
    if (pair && expiresSoon(pair.access)) {
      const next = await refresh(pair)
      pair = next.ok ? next.data : storage.get()
    }
    const first = await send<Data>(request, pair?.access)
    if (first.ok || first.error.kind !== 'http' || first.error.status !== 401 || !pair) return first
    const next = await refresh(pair)
    return next.ok ? send<Data>(request, next.data.access) : first
  }
}

const hasAuthorization = (headers: Record<string, string>) => Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')

function queryString(query: Record<string, unknown> | undefined) {
  const pairs = Object.entries(query ?? {}).filter(([, value]) => value !== undefined && value !== null)
  return pairs.length ? `?${new URLSearchParams(pairs.map(([key, value]): [string, string] => [key, String(value)]))}` : ''
}

/** A multipart body: files as they are, `null` as the empty value that removes a picture. */
export function formOf(fields: Record<string, unknown>) {
  const form = new FormData()
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue
    form.append(key, value instanceof Blob ? value : value === null ? '' : String(value))
  }
  return form
}
