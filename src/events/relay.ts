import { and, asc, eq, inArray, isNotNull, isNull, lt, notExists } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { Clock } from '../clock'
import type { Database, DbHandle } from '../db'
import { readBacklog, startRelayLoop, type Backlog, type CycleResult, type RelayLoop } from '../db/relay-loop'
import type { Logger } from '../logger'
import { PublishError, type OutboundEvent, type Publisher } from './publisher'
import { outboxEvents, type OutboxRow } from './table'

// Order. Rows are read in `seq` order, and for one user that is commit order: every write of a user takes
// the user's row lock (insert, update, delete, select for update) before recordUserEvent inserts the event,
// so a second transaction on the same user draws its seq only after the first committed. (A creation
// writes its event in the same statement as the row: no other write of that user can come first, since
// none sees the row before it commits.) Gaps between users are harmless: a lower seq that commits after
// a higher one was published is simply still pending on the next read, and the relay never assumes
// "everything below the last published seq is done".
// Within one publish call a user appears at most once, so a copy that fails mid-batch can never be
// overtaken by that user's next event, and a failed event holds back every later event of its user.
//
// One relay at a time, woken after each write request and by a sweep: the loop of db/relay-loop.ts, whose
// cycles run under one advisory lock on Postgres.
//
// Poison. A failure that says something about the event (a nack, a return, a dropped channel) counts as
// an attempt on the row; `disconnected` and `timeout` say only that the broker is away and count nothing.
// After maxAttempts the row is marked failed with its error and the relay moves on to other users; the
// failed user's later events wait behind it (never delivered out of order) until an operator retries it.

export type RelayOptions = {
  sweepIntervalMs: number
  maxAttempts: number
  retentionMs: number
  /** Delay after a failed cycle, doubling up to maxMs. */
  backoff?: { initialMs: number; maxMs: number }
}

export type RelayStatus = Backlog & { broker: 'not-configured' | 'connected' | 'disconnected'; lastError: string | null }

/** The background publisher of the outbox (what `stop` leaves stays in the outbox). */
export type Relay = RelayLoop & { status(): Promise<RelayStatus> }

export type RelayDeps = {
  database: DbHandle
  publisher: Publisher | undefined
  logger: Logger
  clock: Clock
  options: RelayOptions
  /** Told of every publish the broker did not confirm, with its reason (for the metrics). */
  onPublishFailure?: (reason: string) => void
}

const BATCH_SIZE = 100
// Checking the publisher's connection costs no I/O, so a disconnected relay can poll it often.
const DISCONNECTED_POLL_MS = 100
// Any constant distinct from the migration lock's; the same for every instance.
const RELAY_LOCK_KEY = 0x75736573

/** Starts the relay loop; without a publisher it only says so, once, and leaves events in the outbox. */
export function createRelay(deps: RelayDeps): Relay {
  const { publisher, database, clock } = deps
  if (publisher) return startRelay({ ...deps, publisher })
  deps.logger.warn('no broker configured (AMQP_URL or RABBITMQ_HOST): user events are kept in the outbox until one is')
  return { wake() {}, stop: async () => {}, status: () => outboxStatus(database.db, clock, 'not-configured', null) }
}

function startRelay({ database, publisher, logger, clock, options, onPublishFailure }: RelayDeps & { publisher: Publisher }): Relay {
  const log = logger.child({ component: 'outbox-relay' })
  let lastError: string | null = null

  async function publishNextBatch(q: Database): Promise<CycleResult> {
    const batch = onePerUser(await pendingRows(q))
    if (batch.length === 0) return 'idle'
    try {
      await publisher.publish(batch.map(toOutboundEvent))
    } catch (error) {
      if (!(error instanceof PublishError)) throw error
      onPublishFailure?.(error.reason)
      await markPublished(q, batch.slice(0, error.index))
      if (error.reason === 'disconnected') return DISCONNECTED_POLL_MS
      return noteFailure(q, batch[error.index]!, error)
    }
    await markPublished(q, batch)
    lastError = null
    return 'more'
  }

  async function markPublished(q: Database, rows: OutboxRow[]) {
    if (rows.length === 0) return
    const seqs = rows.map((row) => row.seq)
    await q.update(outboxEvents).set({ publishedAt: new Date(clock.now()) }).where(inArray(outboxEvents.seq, seqs))
  }

  /** Counts a failed publish on the row (unless the broker was only slow): `failed` backs off, `more` gave up and goes on. */
  async function noteFailure(q: Database, row: OutboxRow, error: PublishError): Promise<CycleResult> {
    lastError = error.message
    const event = { eventId: row.id, seq: row.seq, name: row.name, userId: row.userId }
    if (error.reason === 'timeout') {
      log.warn({ err: error, ...event }, 'outbox relay: the broker did not confirm in time; retrying with backoff')
      return 'failed'
    }
    const attempts = row.attempts + 1
    const gaveUp = attempts >= options.maxAttempts
    await q
      .update(outboxEvents)
      .set({ attempts, lastError: error.message, failedAt: gaveUp ? new Date(clock.now()) : null })
      .where(eq(outboxEvents.seq, row.seq))
    if (!gaveUp) {
      log.warn({ err: error, ...event, attempts }, 'outbox relay: publish failed; retrying with backoff')
      return 'failed'
    }
    log.error(
      { err: error, ...event, attempts },
      'outbox relay: gave up on an event; it stays in the outbox marked failed, and later events of the same user wait until it is retried',
    )
    return 'more'
  }

  const loop = startRelayLoop({
    database,
    clock,
    logger: log,
    name: 'outbox relay',
    lockKey: RELAY_LOCK_KEY,
    sweepIntervalMs: options.sweepIntervalMs,
    // Capped at a second, so that the first cycle after a database outage comes within about a second of
    // its return; one transaction attempt a second does not hammer a database still down.
    backoff: options.backoff ?? { initialMs: 100, maxMs: 1_000 },
    cycle: publishNextBatch,
    blocked: () => (publisher.isConnected() ? undefined : DISCONNECTED_POLL_MS),
    prune: async (db, now) => {
      await db.delete(outboxEvents).where(lt(outboxEvents.publishedAt, new Date(now - options.retentionMs)))
    },
    flushWhileFailing: true,
    leftBehind: 'unpublished events stay in the outbox',
  })

  return {
    wake: loop.wake,
    stop: loop.stop,
    status: () => outboxStatus(database.db, clock, publisher.isConnected() ? 'connected' : 'disconnected', lastError),
  }
}

function pendingRows(q: Database): Promise<OutboxRow[]> {
  const earlier = alias(outboxEvents, 'earlier')
  const failedBefore = q
    .select({ seq: earlier.seq })
    .from(earlier)
    .where(and(eq(earlier.userId, outboxEvents.userId), isNotNull(earlier.failedAt), lt(earlier.seq, outboxEvents.seq)))
  return q
    .select()
    .from(outboxEvents)
    .where(and(isNull(outboxEvents.publishedAt), isNull(outboxEvents.failedAt), notExists(failedBefore)))
    .orderBy(asc(outboxEvents.seq))
    .limit(BATCH_SIZE)
}

// The longest prefix in which no user appears twice.
function onePerUser(rows: OutboxRow[]): OutboxRow[] {
  const users = new Set<string>()
  const batch: OutboxRow[] = []
  for (const row of rows) {
    if (users.has(row.userId)) break
    users.add(row.userId)
    batch.push(row)
  }
  return batch
}

const toOutboundEvent = (row: OutboxRow): OutboundEvent => ({ id: row.id, name: row.name, payload: row.payload, createdAt: row.createdAt })

async function outboxStatus(db: Database, clock: Clock, broker: RelayStatus['broker'], lastError: string | null): Promise<RelayStatus> {
  const { publishedAt: deliveredAt, failedAt, createdAt } = outboxEvents
  return { broker, ...(await readBacklog(db, clock, { table: outboxEvents, deliveredAt, failedAt, createdAt })), lastError }
}
