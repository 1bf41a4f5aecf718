import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { and, eq } from 'drizzle-orm'
import { simpleParser } from 'mailparser'
import { mailOutbox } from '../src/mail/table'
import { waitFor } from './support/wait'
import { capturingLogger, createTestApp, type TestApp } from './support/app'
import { secretsOf, startSmtpServer, type TestSmtp } from './support/smtp'

const env = (smtp: TestSmtp) => ({ SMTP_URL: smtp.url, MAIL_RETRY_MAX: '1s', MAIL_REQUESTS_PER_EMAIL: '100' })
const resetRequest = (app: TestApp, email: string) => app.call('POST', '/api/users/password/reset/', { body: { email } })
const resets = (smtp: TestSmtp) => smtp.received.filter((message) => /Reset your/.test(message.mail.subject ?? ''))

/** Fails when a message (by Message-ID) was accepted more than once. */
function expectEachOnce(smtp: TestSmtp) {
  const ids = smtp.received.map((message) => `${message.mail.messageId} ${message.to}`)
  expect(new Set(ids).size).toBe(ids.length)
}

describe('the mail relay on Postgres', () => {
  let smtp: TestSmtp
  let t: TestApp
  beforeAll(async () => {
    smtp = await startSmtpServer()
    t = await createTestApp({ label: 'mail', env: env(smtp) })
  })
  afterAll(async () => {
    await t?.close()
    await smtp?.stop()
  })

  test('with the SMTP server down, every request answers at once, and every message arrives once when it is back', async () => {
    const users = await Promise.all(Array.from({ length: 10 }, () => t.registerUser()))
    await waitFor(() => smtp.received.length >= 10, 'the verification messages')
    await smtp.stop()
    const slowest = { ms: 0 }
    for (const user of users) {
      const started = performance.now()
      expect((await resetRequest(t, user.email)).status).toBe(202)
      slowest.ms = Math.max(slowest.ms, performance.now() - started)
    }
    // Generous: a request that waited for SMTP would take the connection timeout (10 s).
    expect(slowest.ms).toBeLessThan(1_000)

    const ready = await t.call('GET', '/health/ready')
    expect(ready.status).toBe(200)
    expect(ready.body.checks.mail).toMatchObject({ status: 'up', transport: 'smtp', pending: 10, failed: 0 })
    const metrics = (await t.call('GET', '/metrics')).body as string
    expect(metrics).toMatch(/^users_mail_pending 10$/m)
    expect(metrics).toMatch(/^users_mail_failures_total\{reason="server"\} [1-9]/m)

    await smtp.start()
    await waitFor(() => resets(smtp).length === 10, 'every reset message after the server is back', 10_000)
    for (const user of users) expect(smtp.to(user.email).filter((m) => /Reset your/.test(m.mail.subject ?? ''))).toHaveLength(1)
    expectEachOnce(smtp)
    await waitFor(async () => (await t.call('GET', '/health/ready')).body.checks.mail.pending === 0, 'an empty backlog')
  }, 30_000)

  test('a message the server refuses is retried on its own, without holding the others back, then given up on', async () => {
    const refused = await t.registerUser()
    const others = await Promise.all(Array.from({ length: 3 }, () => t.registerUser()))
    await waitFor(() => smtp.to(others[2]!.email).length === 1 && smtp.to(refused.email).length === 1, 'the verification messages')
    smtp.refuse.set(refused.email, 450)
    expect((await resetRequest(t, refused.email)).status).toBe(202)
    for (const user of others) expect((await resetRequest(t, user.email)).status).toBe(202)
    await waitFor(() => others.every((user) => smtp.to(user.email).length === 2), 'the other reset messages')
    const [row] = await t.deps.db.select().from(mailOutbox).where(and(eq(mailOutbox.toAddress, refused.email), eq(mailOutbox.kind, 'password_reset')))
    await waitFor(async () => {
      const [current] = await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.id, row!.id))
      return current!.attempts >= 1
    }, 'a counted attempt')

    // A permanent refusal ends it: marked failed, its token-bearing payload gone, shown on /health/ready and /metrics.
    smtp.refuse.set(refused.email, 550)
    t.clock.advance(60_000)
    t.deps.mailRelay.wake()
    await waitFor(async () => (await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.id, row!.id)))[0]!.failedAt !== null, 'the give-up')
    const [failed] = await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.id, row!.id))
    expect(failed).toMatchObject({ payload: null, lastError: expect.stringContaining('refused') })
    expect((await t.call('GET', '/health/ready')).body.checks.mail).toMatchObject({ status: 'up', failed: 1 })
    expect((await t.call('GET', '/metrics')).body).toMatch(/^users_mail_failed 1$/m)
    smtp.refuse.clear()
  }, 20_000)

  test('a delivered message keeps no payload, and delivered rows are pruned after the retention', async () => {
    const user = await t.registerUser()
    await waitFor(() => smtp.to(user.email).length === 1, 'the verification message')
    await waitFor(async () => {
      const rows = await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, user.email))
      return rows.length === 1 && rows[0]!.sentAt !== null
    }, 'the row marked sent')
    const [sent] = await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, user.email))
    expect(sent!.payload).toBeNull()
    t.clock.advance(8 * 24 * 3600 * 1000)
    // A new message makes the relay run a cycle, which prunes (at most once a minute of the clock).
    await resetRequest(t, user.email)
    await waitFor(async () => (await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.id, sent!.id))).length === 0, 'the pruned row')
  })

  test('time from a reset request to the SMTP server accepting the message', async () => {
    const user = await t.registerUser()
    await waitFor(() => smtp.to(user.email).length === 1, 'the verification message')
    const delays: number[] = []
    for (let i = 0; i < 20; i++) {
      const before = smtp.to(user.email).length
      const started = performance.now()
      await resetRequest(t, user.email)
      await waitFor(() => smtp.to(user.email).length > before, 'the reset message')
      delays.push(smtp.to(user.email).at(-1)!.acceptedAt - started)
    }
    delays.sort((a, b) => a - b)
    // Of which 100 ms is the test server's fixed wait before its greeting.
    console.log(`reset request → SMTP accepted: median ${delays[10]!.toFixed(1)} ms, max ${delays[19]!.toFixed(1)} ms (20 requests, incl. the server's 100 ms greeting delay)`)
    expect(delays[10]!).toBeLessThan(1_000)
  }, 30_000)
})

describe('two instances on one database', () => {
  let smtp: TestSmtp
  let first: TestApp
  let second: TestApp
  beforeAll(async () => {
    smtp = await startSmtpServer()
    first = await createTestApp({ label: 'mail_two', env: env(smtp) })
    second = await createTestApp({ label: 'mail_two', env: env(smtp), sameDeploymentAs: first })
  })
  afterAll(async () => {
    await second?.close()
    await first?.close()
    await smtp?.stop()
  })

  test('deliver each message once', async () => {
    const users = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? second : first).registerUser()))
    await Promise.all(users.flatMap((user, i) => [resetRequest(first, user.email), resetRequest(second, users[(i + 3) % 10]!.email)]))
    await waitFor(() => resets(smtp).length >= 20, 'twenty reset messages', 10_000)
    await Bun.sleep(300)
    expect(resets(smtp)).toHaveLength(20)
    expect(smtp.received).toHaveLength(30)
    expectEachOnce(smtp)
  }, 20_000)
})

describe('the embedded default (PGlite, no SMTP_URL)', () => {
  test('writes each message as an .eml file under DATA_DIR/mail, says where, and the reset works end to end', async () => {
    const { logger, lines } = capturingLogger()
    const t = await createTestApp({ driver: 'pglite', store: 'memory', logger })
    try {
      const dir = join(t.dataDir, 'mail')
      expect(lines.some((line) => line.dir === dir && line.msg.includes(dir))).toBe(true)
      const user = await t.registerUser()
      const emls = () => readdirSync(dir).filter((name) => name.endsWith('.eml'))
      await waitFor(() => emls().length === 1, 'the verification .eml')
      await t.call('POST', '/api/users/password/reset/', { body: { email: user.email } })
      await waitFor(() => emls().length === 2, 'the reset .eml')
      const mails = await Promise.all(emls().map((name) => simpleParser(readFileSync(join(dir, name)))))
      const reset = mails.find((mail) => /Reset your/.test(mail.subject ?? ''))!
      expect(reset.to).toMatchObject({ value: [{ address: user.email }] })
      const { token } = secretsOf(reset)
      const confirmed = await t.call('POST', '/api/users/password/reset/confirm/', { body: { token, password: 'embedded-new-passphrase' } })
      expect(confirmed.status).toBe(200)
      const verification = mails.find((mail) => /Confirm your email/.test(mail.subject ?? ''))!
      const { code } = secretsOf(verification)
      // The reset proved the address already; the code still verifies it (it is still pending).
      expect((await t.call('POST', '/api/users/email/verify/', { body: { email: user.email, code } })).body.email_verified).toBe(true)
    } finally {
      await t.close()
    }
  }, 60_000)
})
