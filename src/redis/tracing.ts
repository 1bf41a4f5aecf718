import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * node-redis wraps every command in a diagnostics TracingChannel unless `hasSubscribers` is false. Node
 * has that getter; Bun's TracingChannel does not, so every command paid for tracing nobody listens to
 * (a tenth of GET /me's CPU in a profile). This adds the getter, answering as Node does.
 */
export function addTracingChannelHasSubscribers() {
  const prototype = Object.getPrototypeOf(diagnosticsChannel.tracingChannel('users:probe')) as object
  if ('hasSubscribers' in prototype) return
  Object.defineProperty(prototype, 'hasSubscribers', {
    get(this: Record<string, { hasSubscribers?: boolean } | undefined>) {
      return ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].some((name) => this[name]?.hasSubscribers === true)
    },
  })
}
