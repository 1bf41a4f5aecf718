import { Elysia } from 'elysia'
import type { Logger } from '../logger'
import type { Metrics } from '../metrics'
import type { RequestTracker } from './request-tracker'

// What a JSON API needs from a browser: never sniff, never frame, never cache, never leak the referrer.
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'cache-control': 'no-store',
}
// The docs page is the one HTML page: its UI loads scripts and styles, so it is spared the strict policy.
const API_CSP = "default-src 'none'; frame-ancestors 'none'"
const DOCS_PATH = '/api/users/swagger'

/** Whether the URL's path (not its query) is the docs page's; string slicing, not a URL parse, on every request. */
function isDocsPage(url: string) {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start === -1) return false
  const query = url.indexOf('?', start)
  const path = query === -1 ? url.slice(start) : url.slice(start, query)
  return path === DOCS_PATH || path === `${DOCS_PATH}/`
}

// A caller's id is kept only if it cannot smuggle anything into a log line or a header.
const REQUEST_ID = /^[\w.:-]{1,128}$/

type Timing = { id: string; startedAt: number }

/** Request ids, security headers, one access-log line and the HTTP metrics for every request. */
export const requestHooks = ({ logger, metrics, requests }: { logger: Logger; metrics: Metrics; requests: RequestTracker }) => {
  const timings = new WeakMap<Request, Timing>()
  // The access line's fields are ours and hold no secret: pino's redaction (a wildcard path clones and
  // walks every logged object) cost a fifth of the line's price on every request.
  const access = logger.child({}, { redact: [] })
  return new Elysia({ name: 'request-hooks' })
    .onRequest(({ request, set }) => {
      const given = request.headers.get('x-request-id')
      const id = given && REQUEST_ID.test(given) ? given : crypto.randomUUID()
      timings.set(request, { id, startedAt: performance.now() })
      requests.started()
      Object.assign(set.headers, SECURITY_HEADERS, { 'x-request-id': id })
      if (!isDocsPage(request.url)) set.headers['content-security-policy'] = API_CSP
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, response }) => {
      const timing = timings.get(request)
      if (!timing) return
      requests.finished()
      const seconds = (performance.now() - timing.startedAt) / 1000
      const status = response instanceof Response ? response.status : Number(set.status ?? 200)
      // The route template, never the raw path: ids would make every label unique.
      const labels = { method: request.method, route: route || 'unmatched', status: String(status) }
      metrics.requestDuration.observe(labels, seconds)
      access.info({ req_id: timing.id, ...labels, status, duration_ms: Math.round(seconds * 1e4) / 10 }, 'request')
    })
}
