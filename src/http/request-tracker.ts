export type RequestTracker = ReturnType<typeof createRequestTracker>

/**
 * Counts the requests whose handlers still run. A handler goes on after its client has gone, and after
 * the server stopped listening: shutdown waits for these before closing the pools they use.
 */
export function createRequestTracker() {
  let running = 0
  let onIdle: (() => void) | undefined
  return {
    started: () => void running++,
    finished() {
      running--
      if (running === 0) onIdle?.()
    },
    /** Resolves once no handler runs. */
    idle: () => (running === 0 ? Promise.resolve() : new Promise<void>((resolve) => (onIdle = resolve))),
  }
}
