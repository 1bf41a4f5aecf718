import { and, isNotNull, isNull, or, sql } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { backoffDelay } from '../backoff'
import type { Clock } from '../clock'
import type { Logger } from '../logger'
import { raceTimer } from '../timeout'
import type { Database, DbHandle } from './index'

// The one loop behind both outboxes (events/relay.ts, mail/relay.ts): what each delivers, and in which
// order, is theirs; when and under which lock a cycle runs is this.
//
// Wake-ups and the sweep. A cycle runs when the loop starts (whatever an earlier run left), when woken
// (after every write request) and every sweepIntervalMs. A wake-up during a cycle runs one more after it,
// since that cycle may have read before the waking request committed. After a failure the loop backs off
// (the shared backoff) and ignores wake-ups until the delay is over: a failing backend is not hammered.
//
// One instance at a time. On Postgres each cycle is one transaction on a connection of the loop's own
// that first takes pg_try_advisory_xact_lock(lockKey). Cycles of all instances are therefore serialised,
// yet any instance may run the next one: the instance that served a request is the one woken, and it
// delivers at once instead of waiting for a single leader's sweep. When the lock is busy the instance
// retries shortly, so a row committed during another's cycle is not left for the sweep. A dying
// instance's transaction aborts, releasing the lock and leaving its rows pending. PGlite is one process
// on one connection: no lock, and no transaction held across a delivery, which would make every request
// wait for the broker or the mail server.

/**
 * What one cycle did: `more` (it delivered or gave up on something: go on at once), `idle` (nothing due:
 * wait for a wake-up or the sweep), `failed` (back off, holding wake-ups), or a pause in milliseconds
 * after which to look again, wake-ups still welcome.
 */
export type CycleResult = 'more' | 'idle' | 'failed' | number

export type RelayLoopOptions = {
  database: DbHandle
  clock: Clock
  logger: Logger
  /** Names the loop in its log lines: `outbox relay`, `mail relay`. */
  name: string
  /** The advisory lock serialising the cycles of every instance; distinct per outbox. */
  lockKey: number
  sweepIntervalMs: number
  backoff: { initialMs: number; maxMs: number }
  /** One cycle: under the lock in its transaction on Postgres, on the database itself on PGlite. */
  cycle(q: Database): Promise<CycleResult>
  /** Checked before each cycle: a delay instead of the cycle when delivering cannot work now (no connection). */
  blocked?(): number | undefined
  /** Deletes what was delivered long enough ago; run at most once a minute, when a cycle found nothing due. */
  prune(db: Database, now: number): Promise<void>
  /** Whether stop() runs its last round even while backing off after a failure. */
  flushWhileFailing: boolean
  /** What the deadline warning says stays behind. */
  leftBehind: string
}

export type RelayLoop = {
  /** Runs a cycle soon, unless one is running (then it runs again after) or a failure backoff is pending. */
  wake(): void
  /** Stops the loop after flushing what it can before the deadline, then closes its connection. */
  stop(options: { deadlineMs: number }): Promise<void>
}

type Next = { delayMs: number; wakeable: boolean }

const BUSY_RETRY_MS = 25
const PRUNE_EVERY_MS = 60_000

/** Starts the loop; its first cycle delivers whatever was left from before this start. */
export function startRelayLoop(options: RelayLoopOptions): RelayLoop {
  const { database, clock, logger: log, name } = options
  const connection = lockedConnection(database, options.lockKey)

  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined
  let rerun = false
  let holdWakes = false
  let failures = 0
  let stopping = false
  let stopped: Promise<void> | undefined
  let closed = false
  let lastPruneAt = -Infinity

  const retryDelay = () => backoffDelay(++failures, options.backoff)

  function run(): void {
    clearTimeout(timer)
    timer = undefined
    if (running) {
      rerun = true
      return
    }
    running = drain().then(({ delayMs, wakeable }) => {
      running = undefined
      if (stopping) return
      if (rerun && wakeable) return run()
      holdWakes = !wakeable
      timer = setTimeout(() => {
        holdWakes = false
        run()
      }, delayMs)
    })
  }

  async function drain(): Promise<Next> {
    rerun = false
    try {
      while (!closed) {
        const blockedMs = options.blocked?.()
        if (blockedMs !== undefined) return { delayMs: blockedMs, wakeable: true }
        const result = await connection.exclusively(options.cycle)
        if (result === 'more') continue
        if (result === 'busy') return { delayMs: BUSY_RETRY_MS, wakeable: true }
        if (result === 'failed') return { delayMs: retryDelay(), wakeable: false }
        if (typeof result === 'number') return { delayMs: result, wakeable: true }
        failures = 0
        await pruneIfDue()
        break
      }
    } catch (err) {
      if (closed) return { delayMs: options.sweepIntervalMs, wakeable: true }
      log.error({ err }, `${name}: cycle failed (database?); retrying with backoff`)
      connection.renew()
      return { delayMs: retryDelay(), wakeable: false }
    }
    return { delayMs: options.sweepIntervalMs, wakeable: true }
  }

  async function pruneIfDue() {
    const now = clock.now()
    if (now - lastPruneAt < PRUNE_EVERY_MS) return
    lastPruneAt = now
    await options.prune(connection.db(), now)
  }

  run()

  return {
    wake() {
      if (!stopping && !holdWakes) run()
    },
    stop({ deadlineMs }) {
      stopped ??= (async () => {
        stopping = true
        clearTimeout(timer)
        const flushed = (async () => {
          await running
          // One more round after the current one: it may have read before the last requests committed.
          if (options.flushWhileFailing || !holdWakes) await drain()
        })()
        const inTime = await raceTimer(
          flushed.then(() => true),
          deadlineMs,
          () => false,
        )
        closed = true
        if (!inTime) log.warn({ deadlineMs }, `${name}: shutdown deadline passed; ${options.leftBehind}`)
        await connection.close()
      })()
      return stopped
    },
  }
}

/** The loop's own connection on Postgres, each cycle a transaction that first takes the lock; the database itself on PGlite. */
function lockedConnection(database: DbHandle, lockKey: number) {
  let session = database.driver === 'postgres' ? database.openSession() : undefined
  return {
    exclusively: (work: (q: Database) => Promise<CycleResult>): Promise<CycleResult | 'busy'> =>
      session ? session.db.transaction(async (tx) => ((await tryLock(tx, lockKey)) ? work(tx) : 'busy')) : work(database.db),
    // After a failed cycle the session's one connection may be left in a state in which postgres.js never
    // settles the next transaction (seen after pg_terminate_backend: the relay then went silent for good).
    // A fresh session costs one connection; the old one is dropped without waiting.
    renew() {
      if (database.driver !== 'postgres' || !session) return
      void session.close().catch(() => {})
      session = database.openSession()
    },
    db: () => session?.db ?? database.db,
    close: async () => {
      await session?.close()
    },
  }
}

async function tryLock(tx: Database, key: number): Promise<boolean> {
  const rows = (await tx.execute(sql`select pg_try_advisory_xact_lock(${key}) as locked`)) as unknown as
    | { locked: boolean }[]
    | { rows: { locked: boolean }[] }
  return (Array.isArray(rows) ? rows : rows.rows)[0]?.locked === true
}

/** What waits in an outbox: rows neither delivered nor given up on, rows given up on, and the age of the oldest waiting. */
export type Backlog = { pending: number; failed: number; oldestPendingMs: number | null }

/** An outbox's backlog, read in one query; `deliveredAt`, `failedAt` and `createdAt` are its timestamp columns. */
export async function readBacklog(
  db: Database,
  clock: Clock,
  outbox: { table: PgTable; deliveredAt: PgColumn; failedAt: PgColumn; createdAt: PgColumn },
): Promise<Backlog> {
  const { table, deliveredAt, failedAt, createdAt } = outbox
  const [counts] = await db
    .select({
      pending: sql<number>`count(*) filter (where ${failedAt} is null)`.mapWith(Number),
      failed: sql<number>`count(*) filter (where ${failedAt} is not null)`.mapWith(Number),
      oldest: sql<Date | null>`min(${createdAt}) filter (where ${failedAt} is null)`.mapWith((value) => createdAt.mapFromDriverValue(value) as Date | null),
    })
    .from(table)
    // Written to match the two partial indexes; failed rows are never delivered.
    .where(or(and(isNull(deliveredAt), isNull(failedAt)), isNotNull(failedAt)))
  const oldest = counts?.oldest
  return {
    pending: counts?.pending ?? 0,
    failed: counts?.failed ?? 0,
    oldestPendingMs: oldest ? Math.max(0, clock.now() - oldest.getTime()) : null,
  }
}
