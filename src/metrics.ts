import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Backlog } from './db/relay-loop'
import type { Relay } from './events/relay'

export type Metrics = ReturnType<typeof createMetrics>

/** Every metric the service exports, on a registry of its own (so each app, in tests too, counts apart). */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const requestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  })
  // The histogram's `_count` per label set, read at each scrape: counting every request a second time
  // (and hashing its labels again) cost the hot path for a figure the histogram already holds.
  new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
    async collect() {
      this.reset()
      for (const { metricName, labels, value } of (await requestDuration.get()).values)
        if (metricName === 'http_request_duration_seconds_count') this.inc(labels, value)
    },
  })
  return {
    registry,
    requestDuration,
    logins: new Counter({ name: 'users_logins_total', help: 'Logins by result', labelNames: ['result'] as const, registers }),
    rateLimited: new Counter({
      name: 'users_rate_limited_total',
      help: 'Requests refused by a rate limit, by limit',
      labelNames: ['limit'] as const,
      registers,
    }),
    sessionsEnded: new Counter({
      name: 'users_sessions_ended_total',
      help: 'Sessions revoked, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    publishFailures: new Counter({
      name: 'users_relay_publish_failures_total',
      help: 'Outbox publishes the broker did not confirm, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    /** Reads the outbox's state at each scrape rather than tracking it on every write. */
    watchOutbox(relay: Pick<Relay, 'status'>) {
      backlogGauges(registry, relay, {
        pending: ['users_outbox_pending', 'Events waiting in the outbox'],
        failed: ['users_outbox_failed', 'Events given up on after the maximum attempts'],
        oldest: ['users_outbox_oldest_pending_seconds', 'Age of the oldest pending event'],
      })
    },
  }
}

/** A relay's backlog as three gauges (pending, failed, oldest pending in seconds), read from its outbox at each scrape. */
export function backlogGauges(
  registry: Registry,
  relay: { status(): Promise<Backlog> },
  names: Record<'pending' | 'failed' | 'oldest', [name: string, help: string]>,
) {
  let status: Promise<Backlog> | undefined
  // One status query serves the three gauges of a scrape.
  const current = () => (status ??= relay.status().finally(() => setTimeout(() => (status = undefined), 100)))
  const gauge = ([name, help]: [string, string], read: (s: Backlog) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(read(await current()))
      },
    })
  gauge(names.pending, (s) => s.pending)
  gauge(names.failed, (s) => s.failed)
  gauge(names.oldest, (s) => (s.oldestPendingMs ?? 0) / 1000)
}
