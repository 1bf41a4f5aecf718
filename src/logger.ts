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
  return pino(options, stdout)
}
