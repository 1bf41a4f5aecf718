import { Counter, Histogram, type Registry } from 'prom-client'
import type { CheckResult, ReadinessCheck } from '../health/checks'
import { backlogGauges } from '../metrics'
import type { MailRelay, MailStatus } from './relay'

/** The mail relay's metrics on the service's registry: deliveries, failures, and the outbox read at each scrape. */
export function createMailMetrics(registry: Registry) {
  const registers = [registry]
  const sent = new Counter({ name: 'users_mail_sent_total', help: 'Messages the mail server (or the .eml folder) took', registers })
  const failures = new Counter({
    name: 'users_mail_failures_total',
    help: 'Failed deliveries: server (unreachable or refusing everything), message (refused, retried), gave_up',
    labelNames: ['reason'] as const,
    registers,
  })
  const delay = new Histogram({
    name: 'users_mail_delivery_seconds',
    help: 'Time from a message being queued to the mail server taking it',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
    registers,
  })
  return {
    onSent: (queuedMs: number) => {
      sent.inc()
      delay.observe(queuedMs / 1000)
    },
    onFailure: (reason: string) => failures.inc({ reason }),
    /** Registers the backlog gauges, read from the outbox when scraped. */
    watch(relay: Pick<MailRelay, 'status'>) {
      backlogGauges(registry, relay, {
        pending: ['users_mail_pending', 'Messages waiting to be delivered'],
        failed: ['users_mail_failed', 'Messages given up on'],
        oldest: ['users_mail_oldest_pending_seconds', 'Age of the oldest waiting message'],
      })
    },
  }
}

/**
 * The mail backlog on /health/ready, always `up`: every route answers without the mail server, and taking
 * instances out of the load balancer over an SMTP outage is the very failure the outbox exists to absorb.
 * The numbers are there for a person; alert on the metrics.
 */
export const mailCheck = (relay: Pick<MailRelay, 'status'>): ReadinessCheck => ({
  name: 'mail',
  check: async (): Promise<CheckResult> => {
    const { transport, pending, failed, oldestPendingMs, lastError } = await relay.status()
    return { status: 'up', transport, pending, failed, oldest_pending_ms: oldestPendingMs, ...(lastError && { last_error: lastError }) }
  },
})
