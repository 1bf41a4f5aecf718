import { and, asc, eq, isNotNull, isNull, lt, lte, or, sql } from 'drizzle-orm'
import { backoffDelay } from '../backoff'
import type { Clock } from '../clock'
import type { Database, DbHandle } from '../db'
import type { Logger } from '../logger'
import { renderMail } from './messages'
import { mailOutbox, type MailRow } from './table'
import type { Brand } from './templates/layout'
import type { MailTransport } from './transport'
import { raceTimer } from '../timeout'

// The same shape as the event relay (events/relay.ts): a loop woken after each write request and by a
// sweep, whose every cycle runs under one advisory lock on Postgres, so one instance at a time delivers and
// a message committed on any instance is delivered once. What differs is the queue: messages have no order
// to keep, so a cycle takes the message that is due soonest, and one that fails is given its own next
// attempt time (the shared backoff, capped) and left behind while the others go on.
//
// Once per request. Each message is sent and marked in one transaction of the relay's own connection,
// holding the lock: a second instance cannot send it meanwhile, and a message whose mark did not commit
// (the instance died in between) is the only kind that can go out twice. PGlite is one process on one
// connection: no lock, and no transaction held open across a send (it would make every request wait).
//
// Who is at fault. A rejection of the message itself (nodemailer's EENVELOPE or EMESSAGE: a refused
// recipient, a too-large message) counts as an attempt on that row; a 5xx rejection is final at once. Any
// other error (connection refused, timeout, TLS, authentication) says the server is away or misconfigured:
// no message is charged, and the whole relay backs off (capped at MAIL_RETRY_MAX) until it answers again.

export type MailRelayOptions = {
  sweepIntervalMs: number
  maxAttempts: number
  retentionMs: number
  /** The shared backoff (doubling from initialMs up to maxMs, jittered), for the relay after a server failure and for each failing message. */
  backoff: { initialMs: number; maxMs: number }
}

export type MailStatus = {
  transport: MailTransport['kind']
  pending: number
  failed: number
  oldestPendingMs: number | null
  lastError: string | null
}

/** The background sender of the mail outbox. */
export type MailRelay = {
  /** Runs a cycle soon, unless one is running (then again after it) or a server failure's backoff is pending. */
  wake(): void
  /** Stops after delivering what it can before the deadline; what is left stays queued for the next start. */
  stop(options: { deadlineMs: number }): Promise<void>
  status(): Promise<MailStatus>
}

export type MailRelayDeps = {
  database: DbHandle
  transport: MailTransport
  logger: Logger
  clock: Clock
  from: string
  brand: Brand
  options: MailRelayOptions
  /** Told of each accepted message with its time in the outbox, and of each failure with its reason (the metrics). */
  onSent?: (queuedMs: number) => void
  onFailure?: (reason: 'server' | 'message' | 'gave_up') => void
}

type Outcome = 'idle' | 'sent' | 'message-failed' | 'busy' | 'server-failed'

const BUSY_RETRY_MS = 25
const PRUNE_EVERY_MS = 60_000
// Distinct from the migration's and the event relay's locks; the same for every instance.
const MAIL_RELAY_LOCK_KEY = 0x75736d6c
const MESSAGE_LEVEL_ERRORS = new Set(['EENVELOPE', 'EMESSAGE'])

/** Starts the mail relay loop; it first delivers whatever an earlier run left queued. */
export function createMailRelay(deps: MailRelayDeps): MailRelay {
  const { database, transport, clock, options, brand } = deps
  const log = deps.logger.child({ component: 'mail-relay' })
  const session = database.driver === 'postgres' ? database.openSession() : undefined
  const exclusively = (work: (q: Database) => Promise<Outcome>): Promise<Outcome> =>
    session ? session.db.transaction(async (tx) => ((await tryLock(tx)) ? work(tx) : 'busy')) : work(database.db)

  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined
  let rerun = false
  let holdWakes = false
  let failures = 0
  let stopping = false
  let stopped: Promise<void> | undefined
  let closed = false
  let lastPruneAt = -Infinity
  let lastError: string | null = null

  const retryDelay = (count: number) => backoffDelay(count, options.backoff)

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

  async function drain(): Promise<{ delayMs: number; wakeable: boolean }> {
    rerun = false
    try {
      while (!closed) {
        const outcome = await exclusively(deliverNext)
        if (outcome === 'sent' || outcome === 'message-failed') continue
        if (outcome === 'busy') return { delayMs: BUSY_RETRY_MS, wakeable: true }
        if (outcome === 'server-failed') return { delayMs: retryDelay(++failures), wakeable: false }
        failures = 0
        await pruneIfDue()
        break
      }
    } catch (err) {
      if (closed) return { delayMs: options.sweepIntervalMs, wakeable: true }
      log.error({ err }, 'mail relay: cycle failed (database?); retrying with backoff')
      return { delayMs: retryDelay(++failures), wakeable: false }
    }
    return { delayMs: options.sweepIntervalMs, wakeable: true }
  }

  async function deliverNext(q: Database): Promise<Outcome> {
    const now = new Date(clock.now())
    const [row] = await q
      .select()
      .from(mailOutbox)
      .where(and(isNull(mailOutbox.sentAt), isNull(mailOutbox.failedAt), lte(mailOutbox.nextAttemptAt, now)))
      .orderBy(asc(mailOutbox.nextAttemptAt), asc(mailOutbox.createdAt))
      .limit(1)
    if (!row) return 'idle'
    let content
    try {
      content = renderMail(brand, row.kind, row.payload)
    } catch (error) {
      // A kind or payload this version cannot render will not render on a retry either.
      return charge(q, row, error, true)
    }
    try {
      await transport.send({ id: row.id, from: deps.from, to: row.toAddress, ...content })
    } catch (error) {
      const { code, responseCode } = error as { code?: string; responseCode?: number }
      if (MESSAGE_LEVEL_ERRORS.has(code ?? '')) return charge(q, row, error, (responseCode ?? 0) >= 500)
      lastError = errorMessage(error)
      deps.onFailure?.('server')
      log.warn({ err: error, mailId: row.id, kind: row.kind }, 'mail relay: the mail server did not take the message; retrying with backoff')
      return 'server-failed'
    }
    // The payload holds the token and code: it goes as soon as the server has the message.
    await q.update(mailOutbox).set({ sentAt: new Date(clock.now()), payload: null, lastError: null }).where(eq(mailOutbox.id, row.id))
    deps.onSent?.(clock.now() - row.createdAt.getTime())
    lastError = null
    return 'sent'
  }

  /** Counts a failed attempt on the message itself: it waits its own backoff, or is given up on. */
  async function charge(q: Database, row: MailRow, error: unknown, final: boolean): Promise<Outcome> {
    lastError = errorMessage(error)
    const attempts = row.attempts + 1
    const gaveUp = final || attempts >= options.maxAttempts
    const now = clock.now()
    await q
      .update(mailOutbox)
      .set({
        attempts,
        lastError,
        nextAttemptAt: new Date(now + retryDelay(attempts)),
        // Nobody will send it now: its token goes too.
        ...(gaveUp && { failedAt: new Date(now), payload: null }),
      })
      .where(eq(mailOutbox.id, row.id))
    deps.onFailure?.(gaveUp ? 'gave_up' : 'message')
    const fields = { err: error, mailId: row.id, kind: row.kind, attempts }
    if (gaveUp) log.error(fields, 'mail relay: gave up on a message; it stays in the outbox marked failed')
    else log.warn(fields, 'mail relay: the server refused a message; it is retried later, the others go on')
    return 'message-failed'
  }

  async function pruneIfDue() {
    const now = clock.now()
    if (now - lastPruneAt < PRUNE_EVERY_MS) return
    lastPruneAt = now
    await database.db.delete(mailOutbox).where(lt(mailOutbox.sentAt, new Date(now - options.retentionMs)))
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
          // Unless the server is failing, one more round: it may have read before the last requests committed.
          if (!holdWakes) await drain()
        })()
        const inTime = await settlesWithin(flushed, deadlineMs)
        closed = true
        if (!inTime) log.warn({ deadlineMs }, 'mail relay: shutdown deadline passed; undelivered messages stay queued')
        await session?.close()
        transport.close()
      })()
      return stopped
    },
    status: () => mailStatus(database.db, clock, transport.kind, lastError),
  }
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error))

async function tryLock(tx: Database): Promise<boolean> {
  const rows = (await tx.execute(sql`select pg_try_advisory_xact_lock(${MAIL_RELAY_LOCK_KEY}) as locked`)) as unknown as
    | { locked: boolean }[]
    | { rows: { locked: boolean }[] }
  return (Array.isArray(rows) ? rows : rows.rows)[0]?.locked === true
}

async function mailStatus(db: Database, clock: Clock, transport: MailStatus['transport'], lastError: string | null): Promise<MailStatus> {
  const { failedAt, sentAt, createdAt } = mailOutbox
  const [counts] = await db
    .select({
      pending: sql<number>`count(*) filter (where ${failedAt} is null)`.mapWith(Number),
      failed: sql<number>`count(*) filter (where ${failedAt} is not null)`.mapWith(Number),
      oldest: sql<Date | null>`min(${createdAt}) filter (where ${failedAt} is null)`.mapWith(createdAt),
    })
    .from(mailOutbox)
    .where(or(and(isNull(sentAt), isNull(failedAt)), isNotNull(failedAt)))
  const oldest = counts?.oldest
  return {
    transport,
    pending: counts?.pending ?? 0,
    failed: counts?.failed ?? 0,
    oldestPendingMs: oldest ? Math.max(0, clock.now() - oldest.getTime()) : null,
    lastError,
  }
}

const settlesWithin = (promise: Promise<void>, ms: number): Promise<boolean> => raceTimer(promise.then(() => true), ms, () => false)
