import { Elysia } from 'elysia'
import type { Metrics } from '../metrics'

/** GET /metrics: the Prometheus scrape of this process. */
export const metricsRoute = (metrics: Pick<Metrics, 'registry'>) =>
  new Elysia({ tags: ['health'] }).get(
    '/metrics',
    async () => new Response(await metrics.registry.metrics(), { headers: { 'content-type': metrics.registry.contentType } }),
    { detail: { summary: 'Prometheus metrics' } },
  )
