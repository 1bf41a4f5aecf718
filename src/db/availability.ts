import type { Sql } from 'postgres'
import { UnavailableError } from '../errors'
import { raceTimer } from '../timeout'

/** The database could not be reached or did not answer in time: the client may retry, as for Redis. */
export class DatabaseUnavailableError extends UnavailableError {
  constructor(cause?: unknown) {
    super('database', cause)
  }
}

// postgres.js' own codes for a lost or refused connection, the socket's, and Postgres' connection
// exception (08), shutdown and start-up (57P0x) and too-many-connections (53300) codes.
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'QUERY_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  '53300',
  '57P01',
  '57P02',
  '57P03',
])
// A statement cut off by statement_timeout: the database is there but too slow to count on.
const STATEMENT_TIMEOUT = '57014'

const codeOf = (error: unknown) =>
  typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined

/** Whether the error says the database cannot be reached (rather than that the query was wrong). */
export const isConnectionError = (error: unknown) => {
  const code = codeOf(error)
  return code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith('08'))
}

export type AvailabilityOptions = {
  /** How long one query (queue, connect and run) may take before its caller gets a 503. */
  queryTimeoutMs: number
  /** How often a lone probe asks whether the database is back while it is down. */
  probeIntervalMs: number
  onDown?(error: unknown): void
  onUp?(): void
}

export type Availability = { isUp(): boolean }

/**
 * Wraps a postgres.js client so that the database behaves like Redis when it is away: once a query fails
 * for want of a connection, every later one fails at once with a DatabaseUnavailableError (a 503) instead
 * of queueing behind reconnect attempts, while one probe a `probeIntervalMs` asks whether it is back. No
 * query holds its caller longer than `queryTimeoutMs` (the query itself may still finish in the background).
 */
export function guardAvailability(client: Sql, options: AvailabilityOptions): { client: Sql; availability: Availability } {
  let up = true
  let probing: ReturnType<typeof setTimeout> | undefined

  function noteFailure(error: unknown): unknown {
    if (!isConnectionError(error) && codeOf(error) !== STATEMENT_TIMEOUT) return error
    if (isConnectionError(error) && up) {
      up = false
      options.onDown?.(error)
      scheduleProbe()
    }
    return new DatabaseUnavailableError(error)
  }

  function scheduleProbe() {
    probing ??= setTimeout(async () => {
      const ok = await bounded(client`select 1`).then(() => true, () => false)
      probing = undefined
      if (ok) {
        up = true
        options.onUp?.()
      } else scheduleProbe()
    }, options.probeIntervalMs)
    // A probe alone must not keep a stopping process alive.
    probing.unref?.()
  }

  function bounded<T>(promise: PromiseLike<T>): Promise<T> {
    return raceTimer(promise, options.queryTimeoutMs, () => {
      throw Object.assign(new Error(`no answer within ${options.queryTimeoutMs} ms`), { code: 'QUERY_TIMEOUT' })
    })
  }

  // A postgres.js query runs when first awaited, after drizzle has called .values() on it: the guard
  // goes on its `then`, leaving the query object (and its lazy start) as it is.
  function guardQuery<Q extends PromiseLike<unknown>>(query: Q): Q {
    const then = query.then.bind(query)
    Object.defineProperty(query, 'then', {
      value: (resolve?: (value: unknown) => unknown, reject?: (reason: unknown) => unknown) =>
        bounded({ then } as PromiseLike<unknown>).then(resolve, (error) => {
          const mapped = noteFailure(error)
          if (reject) return reject(mapped)
          throw mapped
        }),
    })
    return query
  }

  const refuse = () => Promise.reject(new DatabaseUnavailableError())
  // Rejects only once awaited, like a query, so a caller that never awaits leaves no unhandled rejection.
  const refused = { values: refuse, then: (resolve?: () => unknown, reject?: (reason: unknown) => unknown) => refuse().then(resolve, reject) }
  const guarded = new Proxy(client, {
    get(target, property, receiver) {
      if (property === 'unsafe')
        return (...args: Parameters<Sql['unsafe']>) => {
          if (!up) return refused
          return guardQuery(target.unsafe(...args))
        }
      if (property === 'begin')
        return (...args: unknown[]) => {
          if (!up) return refuse()
          return bounded((target.begin as (...a: unknown[]) => Promise<unknown>)(...args)).catch((error) => {
            throw noteFailure(error)
          })
        }
      return Reflect.get(target, property, receiver)
    },
  })
  return { client: guarded, availability: { isUp: () => up } }
}
