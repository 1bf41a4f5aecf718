import { and, asc, eq, isNull, lt, lte } from 'drizzle-orm'
import { backoffDelay } from '../backoff'
import type { Clock } from '../clock'
import type { Database, DbHandle } from '../db'
import { readBacklog, startRelayLoop, type Backlog, type CycleResult, type RelayLoop } from '../db/relay-loop'
import type { Logger } from '../logger'
import { renderMail } from './messages'
import { mailOutbox, type MailRow } from './table'
import type { Brand } from './templates/layout'
import type { MailTransport } from './transport'

// The event relay's loop (db/relay-loop.ts): woken after each write request and by a sweep, every cycle
// under one advisory lock on Postgres, so one instance at a time delivers and a message committed on any
// instance is delivered once. What differs is the queue: messages have no order to keep, so a cycle takes
// the message that is due soonest, and one that fails is given its own next attempt time (the shared
// backoff, capped) and left behind while the others go on.
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

export type MailStatus = Backlog & { transport: MailTransport['kind']; lastError: string | null }

/** The background sender of the mail outbox (what `stop` leaves stays queued for the next start). */
export type MailRelay = RelayLoop & { status(): Promise<MailStatus> }

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

// Distinct from the migration's and the event relay's locks; the same for every instance.
const MAIL_RELAY_LOCK_KEY = 0x75736d6c
const MESSAGE_LEVEL_ERRORS = new Set(['EENVELOPE', 'EMESSAGE'])

/** Starts the mail relay loop; it first delivers whatever an earlier run left queued. */
export function createMailRelay(deps: MailRelayDeps): MailRelay {
  const { database, transport, clock, options, brand } = deps
  const log = deps.logger.child({ component: 'mail-relay' })
  let lastError: string | null = null
  const retryDelay = (count: number) => backoffDelay(count, options.backoff)

  async function deliverNext(q: Database): Promise<CycleResult> {
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
      return 'failed'
    }
    // The payload holds the token and code: it goes as soon as the server has the message.
    await q.update(mailOutbox).set({ sentAt: new Date(clock.now()), payload: null, lastError: null }).where(eq(mailOutbox.id, row.id))
    deps.onSent?.(clock.now() - row.createdAt.getTime())
    lastError = null
    return 'more'
  }

  /** Counts a failed attempt on the message itself: it waits its own backoff, or is given up on. */
  async function charge(q: Database, row: MailRow, error: unknown, final: boolean): Promise<CycleResult> {
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
    return 'more'
  }

  const loop = startRelayLoop({
    database,
    clock,
    logger: log,
    name: 'mail relay',
    lockKey: MAIL_RELAY_LOCK_KEY,
    sweepIntervalMs: options.sweepIntervalMs,
    backoff: options.backoff,
    cycle: deliverNext,
    prune: async (db, now) => {
      await db.delete(mailOutbox).where(lt(mailOutbox.sentAt, new Date(now - options.retentionMs)))
    },
    // While the server is failing, the last round would only wait for it again.
    flushWhileFailing: false,
    leftBehind: 'undelivered messages stay queued',
  })
  let stopped: Promise<void> | undefined

  return {
    wake: loop.wake,
    stop(deadline) {
      stopped ??= loop.stop(deadline).then(() => transport.close())
      return stopped
    },
    status: () => mailStatus(database.db, clock, transport.kind, lastError),
  }
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error))

async function mailStatus(db: Database, clock: Clock, transport: MailStatus['transport'], lastError: string | null): Promise<MailStatus> {
  const { sentAt: deliveredAt, failedAt, createdAt } = mailOutbox
  return { transport, ...(await readBacklog(db, clock, { table: mailOutbox, deliveredAt, failedAt, createdAt })), lastError }
}
