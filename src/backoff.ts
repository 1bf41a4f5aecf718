/**
 * The one reconnect and retry delay of the service: exponential from `initialMs`, capped at `maxMs`, with
 * equal jitter so instances that lost a backing service together do not return in step. The cap is short
 * (a second or two) on purpose: recovery then follows the service's return within about a cap, and one
 * attempt per cap per instance does not hammer a service that is still down.
 */
export function backoffDelay(failures: number, { initialMs, maxMs }: { initialMs: number; maxMs: number }): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1))
  return ceiling / 2 + (Math.random() * ceiling) / 2
}
