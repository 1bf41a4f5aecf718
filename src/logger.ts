import pino from 'pino'

export type Logger = pino.Logger

const FLUSH_INTERVAL_MS = 250

/** JSON lines in production; readable lines when a person watches a terminal. `destination` is for tests. */
export function createLogger(level: string, pretty = process.stdout.isTTY === true, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'users' },
    // Defence in depth: whatever a call site logs by mistake, these never reach a log line.
    redact: {
      paths: ['password', 'current_password', 'refresh', 'access', 'token', 'secretKey', '*.password', '*.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
    serializers: { err: errorWithoutValues },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true } } : undefined,
  }
  if (destination || pretty) return destination ? pino(options, destination) : pino(options)
  // Buffered and written off the request path: one write per few kilobytes instead of per request line.
  // pino flushes the buffer when the process exits; the timer bounds how late a line can be otherwise
  // (with a quiet service the buffer took minutes to fill, and a killed process lost it).
  const stdout = pino.destination({ dest: 1, sync: false, minLength: 4096 })
  setInterval(() => {
    try {
      stdout.flush()
    } catch {
      // Destroyed at exit: nothing is left to write.
    }
  }, FLUSH_INTERVAL_MS).unref()
  return pino(options, batchLines(stdout))
}

/**
 * Lines reach the destination joined, once per turn of the event loop. SonicBoom measures the byte
 * length of its whole pending chunk on every write: with the access log's one write per request that
 * was 1 to 3 µs a line (a twentieth of GET /me's CPU); once per turn it is nothing. Lines keep their
 * order and still reach the destination within the turn that logged them.
 */
function batchLines(destination: pino.DestinationStream & { flushSync(): void }): pino.DestinationStream {
  let lines: string[] = []
  const drain = () => {
    if (!lines.length) return
    const chunk = lines.join('')
    lines = []
    destination.write(chunk)
  }
  // pino flushes the destination at exit, but what waits here must reach it first.
  process.on('exit', () => {
    drain()
    try {
      destination.flushSync()
    } catch {
      // Destroyed already: nothing is left to write.
    }
  })
  return {
    write(line: string) {
      if (lines.push(line) === 1) setImmediate(drain)
    },
  }
}

// Where database errors keep the values of the failed query (password hashes, emails): Drizzle in
// `params` and in its message, postgres.js in `parameters`/`args`, Postgres in `detail` (the failing row).
const VALUE_KEYS = ['params', 'parameters', 'args', 'detail']

/** pino's error serializer, without the values a failed query carries. */
function errorWithoutValues(error: unknown) {
  const serialized = pino.stdSerializers.err(error as Error) as unknown
  if (typeof serialized !== 'object' || serialized === null) return serialized
  // The message and stack join every cause's: each `params: …` line a Drizzle error wrote into them goes.
  const lines = paramsLines(error)
  const scrub = (text: unknown) =>
    typeof text === 'string' ? lines.reduce((clean, line) => clean.replaceAll(line, '\nparams: [redacted]'), text) : text
  const fields = serialized as Record<string, unknown>
  for (const key of VALUE_KEYS) delete fields[key]
  fields.message = scrub(fields.message)
  fields.stack = scrub(fields.stack)
  if (Array.isArray(fields.aggregateErrors)) fields.aggregateErrors = (error as AggregateError).errors.map(errorWithoutValues)
  return fields
}

function paramsLines(error: unknown, depth = 0): string[] {
  if (typeof error !== 'object' || error === null || depth > 8) return []
  const { params, cause } = error as { params?: unknown; cause?: unknown }
  return [...(Array.isArray(params) ? [`\nparams: ${params}`] : []), ...paramsLines(cause, depth + 1)]
}
