import { Elysia, t } from 'elysia'
import type { CheckResult, ReadinessCheck } from './checks'
import { raceTimer } from '../timeout'

// A hung dependency must not hang the probe.
const CHECK_TIMEOUT_MS = 2_000

const Checks = t.Record(
  t.String(),
  t.Object({ status: t.Union([t.Literal('up'), t.Literal('down')]) }, { additionalProperties: true }),
  { description: 'Each check by name' },
)
const Ready = t.Object({ status: t.Literal('ok'), checks: Checks })
const NotReady = t.Object({ detail: t.String(), code: t.Literal('not_ready'), checks: Checks })

/** Liveness (the process answers) and readiness (every configured backing service answers). */
export const healthRoutes = (checks: ReadinessCheck[]) =>
  new Elysia({ tags: ['health'] })
    .group('/health', (health) => health
    .get('/live', () => ({ status: 'ok' as const }), {
      response: { 200: t.Object({ status: t.Literal('ok') }) },
      detail: { summary: 'The process is up' },
    })
    .get(
      '/ready',
      async ({ status }) => {
        const results = await runChecks(checks)
        const down = Object.keys(results).filter((name) => results[name]?.status === 'down')
        if (down.length === 0) return { status: 'ok' as const, checks: results }
        return status(503, { detail: `Not ready: ${down.join(', ')} down.`, code: 'not_ready' as const, checks: results })
      },
      {
        response: { 200: Ready, 503: NotReady },
        detail: { summary: 'Every configured backing service answers (503 naming those that do not)' },
      },
    ))

async function runChecks(checks: ReadinessCheck[]): Promise<Record<string, CheckResult>> {
  const results = await Promise.all(checks.map(async ({ name, check }) => [name, await bounded(check)] as const))
  return Object.fromEntries(results)
}

const bounded = (check: () => Promise<CheckResult>): Promise<CheckResult> =>
  raceTimer(
    check().catch((): CheckResult => ({ status: 'down', error: 'the check failed' })),
    CHECK_TIMEOUT_MS,
    (): CheckResult => ({ status: 'down', error: `no answer within ${CHECK_TIMEOUT_MS} ms` }),
  )
