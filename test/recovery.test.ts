import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { outboxEvents } from '../src/events/table'
import { recoveryTokens } from '../src/recovery/table'
import { waitFor } from './support/wait'
import { createTestApp, type TestApp } from './support/app'
import { secretsOf, startSmtpServer, type TestSmtp } from './support/smtp'

let smtp: TestSmtp
let t: TestApp

const mailEnv = (smtpUrl: string) => ({
  SMTP_URL: smtpUrl,
  MAIL_FROM: 'Acme <no-reply@acme.test>',
  PRODUCT_NAME: 'Acme <Social>',
  PASSWORD_RESET_URL: 'https://app.acme.test/reset-password',
  EMAIL_VERIFY_URL: 'https://app.acme.test/verify-email',
  MAIL_RETRY_MAX: '1s',
  MAIL_REQUESTS_PER_EMAIL: '100',
})

beforeAll(async () => {
  smtp = await startSmtpServer()
  t = await createTestApp({ label: 'recovery', env: mailEnv(smtp.url) })
})

afterAll(async () => {
  await t?.close()
  await smtp?.stop()
})

/** The one message of a kind that reached the address, once its count is reached. */
async function mailTo(address: string, subject: RegExp, count = 1) {
  const matching = () => smtp.to(address).filter((message) => subject.test(message.mail.subject ?? ''))
  await waitFor(() => matching().length >= count, `${count} message(s) "${subject.source}" to ${address}`)
  await Bun.sleep(50)
  expect(matching()).toHaveLength(count)
  return matching()[count - 1]!.mail
}

const RESET = /Reset your/
const VERIFY = /Confirm your email/
const requestReset = (email: string) => t.call('POST', '/api/users/password/reset/', { body: { email } })
const confirm = (body: Record<string, string>) => t.call('POST', '/api/users/password/reset/confirm/', { body })

describe('email verification', () => {
  test('registration sends one message, escaped, whose link verifies the address and emits user.updated', async () => {
    const user = await t.registerUser({ full_name: 'Ann <b>Bold</b>' })
    const mail = await mailTo(user.email, VERIFY)
    const { token, link } = secretsOf(mail)
    expect(link).toBe(`https://app.acme.test/verify-email?token=${token}`)
    expect(mail.from?.value).toEqual([{ name: 'Acme', address: 'no-reply@acme.test' }])
    expect(mail.html).toContain('Ann &lt;b&gt;Bold&lt;/b&gt;')
    expect(mail.html).toContain('Acme &lt;Social&gt;')
    expect(mail.html).not.toContain('<b>Bold')
    expect(mail.text).toContain('Ann <b>Bold</b>')

    const verified = await t.call('POST', '/api/users/email/verify/', { body: { token } })
    expect(verified.status).toBe(200)
    expect(verified.body).toMatchObject({ id: user.id, email: user.email, email_verified: true })
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.email_verified).toBe(true)
    const events = await t.deps.db.select().from(outboxEvents).where(eq(outboxEvents.userId, user.id))
    expect(events.map((event) => [event.name, (event.payload as { email_verified: boolean }).email_verified])).toEqual([
      ['user.created', false],
      ['user.updated', true],
    ])
    // Used: the same link again is refused.
    expect(await t.call('POST', '/api/users/email/verify/', { body: { token } })).toMatchObject({
      status: 400,
      body: { token: ['Invalid or expired token.'] },
    })
  })

  test('the code beside the link verifies too, given with the email', async () => {
    const user = await t.registerUser()
    const { code } = secretsOf(await mailTo(user.email, VERIFY))
    const verified = await t.call('POST', '/api/users/email/verify/', { body: { email: user.email.toUpperCase(), code } })
    expect(verified.status).toBe(200)
    expect(verified.body.email_verified).toBe(true)
  })

  test('a resend voids the older message; once verified, a resend sends nothing', async () => {
    const user = await t.registerUser()
    const first = secretsOf(await mailTo(user.email, VERIFY))
    expect((await t.call('POST', '/api/users/email/verify/resend/')).status).toBe(401)
    const resent = await t.call('POST', '/api/users/email/verify/resend/', { token: user.access })
    expect(resent.status).toBe(202)
    const second = secretsOf(await mailTo(user.email, VERIFY, 2))
    expect((await t.call('POST', '/api/users/email/verify/', { body: { token: first.token } })).status).toBe(400)
    expect((await t.call('POST', '/api/users/email/verify/', { body: { token: second.token } })).status).toBe(200)
    expect((await t.call('POST', '/api/users/email/verify/resend/', { token: user.access })).status).toBe(202)
    await Bun.sleep(200)
    expect(smtp.to(user.email).filter((message) => VERIFY.test(message.mail.subject ?? ''))).toHaveLength(2)
  })

  test('an email change marks the address unverified, verifies the new one and tells the old one', async () => {
    const user = await t.registerUser({ full_name: 'Mover' })
    const old = secretsOf(await mailTo(user.email, VERIFY))
    const newEmail = `moved-${crypto.randomUUID().slice(0, 6)}@example.com`
    const changed = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { email: newEmail, current_password: user.password },
    })
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({ email: newEmail, email_verified: false })
    const notice = await mailTo(user.email, /email address was changed/)
    expect(notice.text).toContain(newEmail)
    const fresh = secretsOf(await mailTo(newEmail, VERIFY))
    // The link sent to the old address proves nothing any more.
    expect((await t.call('POST', '/api/users/email/verify/', { body: { token: old.token } })).status).toBe(400)
    expect((await t.call('POST', '/api/users/email/verify/', { body: { token: fresh.token } })).body).toMatchObject({
      email: newEmail,
      email_verified: true,
    })
  })

  test('a verification token expires after 24 hours', async () => {
    const user = await t.registerUser()
    const { token } = secretsOf(await mailTo(user.email, VERIFY))
    t.clock.advance(24 * 3600 * 1000 + 1000)
    expect(await t.call('POST', '/api/users/email/verify/', { body: { token } })).toMatchObject({
      status: 400,
      body: { token: ['Invalid or expired token.'] },
    })
  })

  test('a body with neither token nor email and code names token', async () => {
    expect(await t.call('POST', '/api/users/email/verify/', { body: { email: 'a@b.c' } })).toMatchObject({
      status: 400,
      body: { token: ['This field is required.'] },
    })
  })
})

describe('password reset', () => {
  test('the link resets the password, ends every session, starts a new one and sends a notice', async () => {
    const user = await t.registerUser({ password: 'the-old-passphrase' })
    const other = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const requested = await requestReset(user.email)
    expect(requested).toMatchObject({ status: 202, body: { detail: expect.any(String) } })
    const { token, link } = secretsOf(await mailTo(user.email, RESET))
    expect(link).toBe(`https://app.acme.test/reset-password?token=${token}`)

    // The link opens the frontend; nothing on the API spends a token by GET (a mail scanner's visit).
    expect((await t.call('GET', `/api/users/password/reset/confirm/?token=${token}`)).status).toBe(404)

    const reset = await confirm({ token, password: 'a-brand-new-passphrase' })
    expect(reset.status).toBe(200)
    expect(reset.body).toEqual({ refresh: expect.any(String), access: expect.any(String) })
    for (const access of [user.access, other.body.access])
      expect((await t.call('GET', '/api/users/me/', { token: access })).status).toBe(401)
    expect((await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })).status).toBe(401)
    const me = await t.call('GET', '/api/users/me/', { token: reset.body.access })
    expect(me.body).toMatchObject({ id: user.id, email_verified: true })
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'a-brand-new-passphrase' } })).status).toBe(200)
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(400)
    expect((await mailTo(user.email, /password was reset/)).text).toContain('Every session was signed out')
    expect(await confirm({ token, password: 'yet-another-passphrase' })).toMatchObject({ status: 400, body: { token: ['Invalid or expired token.'] } })
  })

  test('the code resets the password, given with the email', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { code } = secretsOf(await mailTo(user.email, RESET))
    const reset = await confirm({ email: user.email, code, password: 'coded-new-passphrase' })
    expect(reset.status).toBe(200)
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'coded-new-passphrase' } })).status).toBe(200)
  })

  test('a newer request voids the older message', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const first = secretsOf(await mailTo(user.email, RESET))
    await requestReset(user.email)
    const second = secretsOf(await mailTo(user.email, RESET, 2))
    expect(await confirm({ token: first.token, password: 'superseded-passphrase' })).toMatchObject({ status: 400, body: { token: expect.any(Array) } })
    expect(await confirm({ email: user.email, code: first.code, password: 'superseded-passphrase' })).toMatchObject({ status: 400 })
    expect((await confirm({ token: second.token, password: 'latest-passphrase-ok' })).status).toBe(200)
  })

  test('a reset token expires after 1 hour', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { token, code } = secretsOf(await mailTo(user.email, RESET))
    t.clock.advance(3600 * 1000 + 1000)
    expect(await confirm({ token, password: 'too-late-passphrase' })).toMatchObject({ status: 400, body: { token: ['Invalid or expired token.'] } })
    expect(await confirm({ email: user.email, code, password: 'too-late-passphrase' })).toMatchObject({ status: 400, body: { code: ['Invalid or expired code.'] } })
  })

  test('a wrong token, and a code for an unknown email, are 400s naming their field', async () => {
    expect(await confirm({ token: 'not-a-token', password: 'whatever-passphrase' })).toMatchObject({ status: 400, body: { token: expect.any(Array) } })
    expect(await confirm({ email: 'nobody@example.com', code: '123456', password: 'whatever-passphrase' })).toMatchObject({
      status: 400,
      body: { code: ['Invalid or expired code.'] },
    })
    expect(await confirm({ token: 'x', password: 'short' })).toMatchObject({ status: 400, body: { password: expect.any(Array) } })
  })

  test('a code allows 5 wrong tries, then the right one is refused too (and so is the link)', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { code, token } = secretsOf(await mailTo(user.email, RESET))
    const wrong = code === '000000' ? '111111' : '000000'
    for (let i = 0; i < 5; i++)
      expect(await confirm({ email: user.email, code: wrong, password: 'guessing-passphrase' })).toMatchObject({ status: 400, body: { code: expect.any(Array) } })
    expect((await confirm({ email: user.email, code, password: 'guessing-passphrase' })).status).toBe(400)
    expect((await confirm({ token, password: 'guessing-passphrase' })).status).toBe(400)
  })

  test('parallel wrong codes get no more than 5 tries', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { code } = secretsOf(await mailTo(user.email, RESET))
    const wrong = code === '000000' ? '111111' : '000000'
    await Promise.all(Array.from({ length: 12 }, () => confirm({ email: user.email, code: wrong, password: 'guessing-passphrase' })))
    expect((await confirm({ email: user.email, code, password: 'guessing-passphrase' })).status).toBe(400)
  })

  test('of concurrent confirms with one token, exactly one wins', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { token } = secretsOf(await mailTo(user.email, RESET))
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => confirm({ token, password: `racing-passphrase-${i}` })))
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400, 400, 400, 400, 400, 400])
    // One notice, for the one reset that happened.
    await mailTo(user.email, /password was reset/)
  })

  test('a password change voids a pending reset and sends a notice', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { token } = secretsOf(await mailTo(user.email, RESET))
    const changed = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { password: 'changed-by-the-owner', current_password: user.password },
    })
    expect(changed.status).toBe(200)
    expect((await mailTo(user.email, /password was changed/)).text).toContain('other sessions were signed out')
    expect((await confirm({ token, password: 'attacker-passphrase' })).status).toBe(400)
  })

  test("deleting the account voids its tokens", async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { token } = secretsOf(await mailTo(user.email, RESET))
    expect((await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })).status).toBe(204)
    expect(await t.deps.db.select().from(recoveryTokens).where(eq(recoveryTokens.userId, user.id))).toEqual([])
    expect((await confirm({ token, password: 'ghost-passphrase-1' })).status).toBe(400)
  })

  test('tokens are stored only as hashes', async () => {
    const user = await t.registerUser()
    await requestReset(user.email)
    const { token, code } = secretsOf(await mailTo(user.email, RESET))
    const rows = await t.deps.db.select().from(recoveryTokens).where(eq(recoveryTokens.userId, user.id))
    expect(rows.length).toBeGreaterThan(0)
    const stored = JSON.stringify(rows)
    expect(stored).not.toContain(token)
    expect(stored).not.toContain(`"${code}"`)
  })
})

describe('no enumeration', () => {
  test('a known and an unknown email get the same status and body', async () => {
    const user = await t.registerUser()
    const known = await requestReset(user.email)
    const unknown = await requestReset(`nobody-${crypto.randomUUID()}@example.com`)
    expect(known.status).toBe(202)
    expect(unknown).toEqual({ ...known, headers: unknown.headers })
    expect([...unknown.headers.keys()].sort()).toEqual([...known.headers.keys()].sort())
  })

  test('a known and an unknown email take the same time (medians over many tries)', async () => {
    const user = await t.registerUser()
    const unknownEmail = `nobody-${crypto.randomUUID()}@example.com`
    const times = { known: [] as number[], unknown: [] as number[] }
    for (let i = 0; i < 60; i++) {
      // Interleaved, so drift in the machine's load falls on both alike.
      for (const [kind, email] of [['known', user.email], ['unknown', unknownEmail]] as const) {
        const started = performance.now()
        expect((await requestReset(email)).status).toBe(202)
        times[kind].push(performance.now() - started)
      }
    }
    const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!
    const [known, unknown] = [median(times.known.slice(10)), median(times.unknown.slice(10))]
    // The median of each interleaved pair's difference: a burst of load on the machine lands on both of a
    // pair alike, so it cancels here where it would not between two separate medians.
    const difference = median(times.known.slice(10).map((ms, i) => ms - times.unknown[i + 10]!))
    console.log(`reset request median: known ${known.toFixed(2)} ms, unknown ${unknown.toFixed(2)} ms, paired difference ${difference.toFixed(2)} ms`)
    // Generous: a lookup that skipped the writes for unknown emails would differ by several round trips.
    expect(Math.abs(difference)).toBeLessThan(Math.max(3, 0.5 * Math.min(known, unknown)))
  }, 30_000)
})

describe('limits', () => {
  let limited: TestApp
  beforeAll(async () => {
    limited = await createTestApp({ label: 'recovery_limits', env: { ...mailEnv(smtp.url), MAIL_REQUESTS_PER_EMAIL: '3' } })
  })
  afterAll(() => limited?.close())

  test('the per-email limit answers alike for a known and an unknown email, and a parallel burst gets no more', async () => {
    const user = await limited.registerUser()
    const unknownEmail = `nobody-${crypto.randomUUID()}@example.com`
    const burst = async (email: string) =>
      Promise.all(Array.from({ length: 8 }, () => limited.call('POST', '/api/users/password/reset/', { body: { email } })))
    const [known, unknown] = [await burst(user.email), await burst(unknownEmail)]
    for (const answers of [known, unknown]) expect(answers.map((a) => a.status).sort()).toEqual([202, 202, 202, 429, 429, 429, 429, 429])
    const refused = (answers: typeof known) => answers.find((a) => a.status === 429)!
    expect(refused(known).body).toEqual(refused(unknown).body)
    expect(refused(known).body.code).toBe('throttled')
    expect(refused(known).headers.get('retry-after')).toBe(refused(unknown).headers.get('retry-after'))
    await mailTo(user.email, RESET, 3)
  })
})

describe('REQUIRE_EMAIL_VERIFICATION=true', () => {
  let strict: TestApp
  beforeAll(async () => {
    strict = await createTestApp({ label: 'recovery_strict', env: { ...mailEnv(smtp.url), REQUIRE_EMAIL_VERIFICATION: 'true' } })
  })
  afterAll(() => strict?.close())

  test('an unverified account cannot log in (403 email_not_verified) until it verifies; a wrong password is still a 400', async () => {
    const user = await strict.registerUser()
    const login = (password: string) => strict.call('POST', '/api/users/login/', { body: { email: user.email, password } })
    expect(await login(user.password)).toMatchObject({ status: 403, body: { code: 'email_not_verified' } })
    expect((await login('not-the-password')).status).toBe(400)
    const { code } = secretsOf((await (async () => {
      await waitFor(() => smtp.to(user.email).length === 1, 'the verification message')
      return smtp.to(user.email)[0]!
    })()).mail)
    expect((await strict.call('POST', '/api/users/email/verify/', { body: { email: user.email, code } })).status).toBe(200)
    expect((await login(user.password)).status).toBe(200)
  })
})
