import type { Clock } from '../clock'
import type { Database } from '../db'
import type { Logger } from '../logger'
import { pruneSecurityEvents } from './service'

export type SecurityLogRetention = {
  /** Prunes once now; the job also does this on its own every interval. */
  prune(): Promise<number>
  stop(): void
}

/**
 * Deletes security events older than the retention, at start and then every interval. Every instance runs
 * it: deleting rows already gone is harmless, so no lock is needed.
 */
export function startSecurityLogRetention(deps: {
  db: Database
  clock: Clock
  logger: Pick<Logger, 'warn' | 'info'>
  retentionDays: number
  intervalMs?: number
}): SecurityLogRetention {
  const prune = async () => {
    const deleted = await pruneSecurityEvents(deps.db, new Date(deps.clock.now() - deps.retentionDays * 86_400_000))
    if (deleted > 0) deps.logger.info({ deleted, retentionDays: deps.retentionDays }, 'security log pruned')
    return deleted
  }
  const run = () => void prune().catch((err: unknown) => deps.logger.warn({ err }, 'security log pruning failed; retried at the next interval'))
  // Unreferenced: a pending prune never keeps the process alive.
  const timer = setInterval(run, deps.intervalMs ?? 3_600_000)
  timer.unref()
  // Once at start too: an instance replaced more often than the interval would otherwise never prune.
  run()
  return { prune, stop: () => clearInterval(timer) }
}
