import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHmac } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import { renderMail } from '../src/mail/messages'
import { mailOutbox } from '../src/mail/table'
import { mfaFactors } from '../src/mfa/table'
import { securityEvents } from '../src/security-log/table'
import { tokenHash } from '../src/recovery/secrets'
import { users } from '../src/users/table'
import { recoveryTokens } from '../src/recovery/table'
import { createUsersClient } from 'users-service/client'
import { createTestApp, type TestApp } from './support/app'

/** RFC 4226 HOTP and RFC 6238 TOTP, written here from the RFCs, so the service's codes are checked independently. */
function hotp(key: Buffer, counter: number, digits: number) {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac('sha1', key).update(message).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 10 ** digits).padStart(digits, '0')
}
const totpAt = (key: Buffer, unixSeconds: number, digits = 6) => hotp(key, Math.floor(unixSeconds / 30), digits)

// RFC 4648 base32, as the enrolment hands out the secret.
function base32Decode(text: string) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const char of text.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(char).toString(2).padStart(5, '0')
  return Buffer.from(bits.match(/.{8}/g)!.map((byte) => parseInt(byte, 2)))
}

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ label: 'mfa', env: { CURRENT_PASSWORD_FAILURES_PER_USER: '3', PRODUCT_NAME: 'Acme' } })
})
afterAll(() => t?.close())

type User = Awaited<ReturnType<TestApp['registerUser']>>

/** A user with a confirmed authenticator app: its key (to compute codes) and the recovery codes. */
async function userWithTotp() {
  const user = await t.registerUser()
  const enrol = await t.call('POST', '/api/users/mfa/totp/', { token: user.access, body: { current_password: user.password } })
  expect(enrol.status).toBe(200)
  const key = base32Decode(enrol.body.secret)
  const confirm = await t.call('POST', `/api/users/mfa/totp/${enrol.body.id}/confirm/`, {
    token: user.access,
    body: { code: totpAt(key, t.clock.now() / 1000) },
  })
  expect(confirm.status).toBe(200)
  // The next login's code is for a later step than the confirmation's (a used step is never accepted again).
  t.clock.advance(30_000)
  return { ...user, key, factorId: enrol.body.id as string, recoveryCodes: confirm.body.recovery_codes as string[] }
}

async function passwordStep(user: Pick<User, 'email' | 'password'>) {
  const response = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
  expect(response.status).toBe(403)
  return response.body as { detail: string; code: string; mfa_token: string; methods: string[] }
}

const secondStep = (mfaToken: string, code: string) => t.call('POST', '/api/users/login/mfa/', { body: { mfa_token: mfaToken, code } })
const nowSeconds = () => t.clock.now() / 1000

describe('our RFC 6238 implementation', () => {
  test('gives the RFC 6238 test vectors (SHA-1, 8 digits, 30 s)', () => {
    const key = Buffer.from('12345678901234567890')
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ]
    for (const [time, code] of vectors) expect(totpAt(key, time, 8)).toBe(code)
  })
})

describe('TOTP', () => {
  test('enrol, confirm, list: pending until confirmed, 10 recovery codes once, the secret encrypted at rest', async () => {
    const user = await t.registerUser()
    const enrol = await t.call('POST', '/api/users/mfa/totp/', { token: user.access, body: { current_password: user.password } })
    expect(enrol.status).toBe(200)
    expect(enrol.body.otpauth_url).toStartWith('otpauth://totp/Acme:')
    expect(enrol.body.otpauth_url).toContain(`secret=${enrol.body.secret}`)
    expect(enrol.body.otpauth_url).toContain('algorithm=SHA1&digits=6&period=30')
    const [row] = await t.deps.db.select().from(mfaFactors).where(eq(mfaFactors.id, enrol.body.id))
    expect(row!.totpSecret).not.toContain(enrol.body.secret)
    expect(row!.confirmedAt).toBeNull()

    // Pending: not listed, and the login is unchanged.
    expect((await t.call('GET', '/api/users/mfa/', { token: user.access })).body).toEqual({ factors: [], recovery_codes_left: 0 })
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)

    const key = base32Decode(enrol.body.secret)
    const wrong = await t.call('POST', `/api/users/mfa/totp/${enrol.body.id}/confirm/`, {
      token: user.access,
      body: { code: totpAt(key, nowSeconds() + 300) },
    })
    expect(wrong.status).toBe(400)
    expect(wrong.body).toEqual({ code: ['Invalid or expired code.'] })
    const confirm = await t.call('POST', `/api/users/mfa/totp/${enrol.body.id}/confirm/`, {
      token: user.access,
      body: { code: totpAt(key, nowSeconds()) },
    })
    expect(confirm.status).toBe(200)
    expect(confirm.body.recovery_codes).toHaveLength(10)
    expect(new Set(confirm.body.recovery_codes).size).toBe(10)
    const again = await t.call('POST', `/api/users/mfa/totp/${enrol.body.id}/confirm/`, {
      token: user.access,
      body: { code: totpAt(key, nowSeconds()) },
    })
    expect(again.status).toBe(400)

    const list = await t.call('GET', '/api/users/mfa/', { token: user.access })
    expect(list.body).toEqual({
      factors: [{ id: enrol.body.id, type: 'totp', name: 'Authenticator app', created_at: expect.any(String), last_used_at: expect.any(String) }],
      recovery_codes_left: 10,
    })
    const mails = await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, user.email))
    expect(mails.map((mail) => mail.kind)).toContain('mfa_enabled')
  })

  test('enrolment needs the current password, counted by the per-user limit', async () => {
    const user = await t.registerUser()
    for (let i = 0; i < 3; i++) {
      const wrong = await t.call('POST', '/api/users/mfa/totp/', { token: user.access, body: { current_password: 'not-it-at-all' } })
      expect(wrong.status).toBe(400)
      expect(wrong.body).toEqual({ current_password: ['Your current password is incorrect.'] })
    }
    const limited = await t.call('POST', '/api/users/mfa/totp/', { token: user.access, body: { current_password: user.password } })
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBeTruthy()
  })

  test('login: the password step answers mfa_required, the code step answers tokens with amr, kept through refresh', async () => {
    const user = await userWithTotp()
    const step = await passwordStep(user)
    expect(step).toEqual({
      detail: expect.any(String),
      code: 'mfa_required',
      mfa_token: expect.any(String),
      methods: ['totp', 'recovery_code'],
    })
    const done = await secondStep(step.mfa_token, totpAt(user.key, nowSeconds()))
    expect(done.status).toBe(200)
    expect(claims(done.body.access).amr).toEqual(['pwd', 'otp'])
    expect((await t.call('GET', '/api/users/me/', { token: done.body.access })).body.email).toBe(user.email)
    const refreshed = await t.call('POST', '/api/users/refresh/', { body: { refresh: done.body.refresh } })
    expect(claims(refreshed.body.access).amr).toEqual(['pwd', 'otp'])
    // The token is spent by the right code.
    t.clock.advance(30_000)
    const reuse = await secondStep(step.mfa_token, totpAt(user.key, nowSeconds()))
    expect(reuse.status).toBe(400)
    expect(Object.keys(reuse.body)).toEqual(['mfa_token'])
  })

  test('an accepted code is refused when replayed within its window', async () => {
    const user = await userWithTotp()
    const code = totpAt(user.key, nowSeconds())
    expect((await secondStep((await passwordStep(user)).mfa_token, code)).status).toBe(200)
    const replay = await secondStep((await passwordStep(user)).mfa_token, code)
    expect(replay.status).toBe(400)
    expect(replay.body).toEqual({ code: ['Invalid or expired code.'] })
    // Two parallel logins with one fresh code: one gets in.
    t.clock.advance(30_000)
    const fresh = totpAt(user.key, nowSeconds())
    const [a, b] = await Promise.all([passwordStep(user), passwordStep(user)])
    const results = await Promise.all([secondStep(a.mfa_token, fresh), secondStep(b.mfa_token, fresh)])
    expect(results.map((result) => result.status).sort()).toEqual([200, 400])
  })

  test('one step of clock drift either way is accepted, two are refused', async () => {
    const user = await userWithTotp()
    // Clear of the step the confirmation used.
    t.clock.advance(60_000)
    const now = nowSeconds()
    expect((await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, now - 30))).status).toBe(200)
    expect((await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, now + 30))).status).toBe(200)
    t.clock.advance(5 * 30_000)
    const later = nowSeconds()
    expect((await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, later - 60))).status).toBe(400)
    expect((await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, later + 60))).status).toBe(400)
    expect((await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, later))).status).toBe(200)
  })

  test('an mfa_token lives 5 minutes', async () => {
    const user = await userWithTotp()
    const step = await passwordStep(user)
    t.clock.advance(5 * 60_000 + 1_000)
    const late = await secondStep(step.mfa_token, totpAt(user.key, nowSeconds()))
    expect(late.status).toBe(400)
    expect(Object.keys(late.body)).toEqual(['mfa_token'])
  })
})

describe('recovery codes', () => {
  test('each works once, in any case and with or without dashes, with amr ["pwd", "recovery"]', async () => {
    const user = await userWithTotp()
    const [first, second] = user.recoveryCodes
    const done = await secondStep((await passwordStep(user)).mfa_token, first!)
    expect(done.status).toBe(200)
    expect(claims(done.body.access).amr).toEqual(['pwd', 'recovery'])
    expect((await t.call('GET', '/api/users/mfa/', { token: user.access })).body.recovery_codes_left).toBe(9)
    expect((await secondStep((await passwordStep(user)).mfa_token, first!)).status).toBe(400)
    const typed = ` ${second!.replaceAll('-', '').toUpperCase()} `
    expect((await secondStep((await passwordStep(user)).mfa_token, typed)).status).toBe(200)
    expect((await secondStep((await passwordStep(user)).mfa_token, second!)).status).toBe(400)
  })

  test('regenerating needs the password and replaces the old set', async () => {
    const user = await userWithTotp()
    const wrong = await t.call('POST', '/api/users/mfa/recovery-codes/', { token: user.access, body: { current_password: 'nope-nope-nope' } })
    expect(wrong.status).toBe(400)
    const fresh = await t.call('POST', '/api/users/mfa/recovery-codes/', { token: user.access, body: { current_password: user.password } })
    expect(fresh.status).toBe(200)
    expect(fresh.body.recovery_codes).toHaveLength(10)
    expect((await secondStep((await passwordStep(user)).mfa_token, user.recoveryCodes[0]!)).status).toBe(400)
    expect((await secondStep((await passwordStep(user)).mfa_token, fresh.body.recovery_codes[0])).status).toBe(200)
    const kinds = (await t.deps.db.select().from(mailOutbox).where(eq(mailOutbox.toAddress, user.email))).map((mail) => mail.kind)
    expect(kinds).toContain('recovery_codes_regenerated')
  })
})

describe('limits on the second step', () => {
  test('5 wrong codes void the mfa_token: the right one is refused after them', async () => {
    const user = await userWithTotp()
    const step = await passwordStep(user)
    for (let i = 0; i < 5; i++) {
      const wrong = await secondStep(step.mfa_token, i % 2 ? '000000' : 'aaaa-bbbb-cccc-dddd')
      expect(wrong.body).toEqual({ code: ['Invalid or expired code.'] })
    }
    const right = await secondStep(step.mfa_token, totpAt(user.key, nowSeconds()))
    expect(right.status).toBe(400)
    expect(Object.keys(right.body)).toEqual(['mfa_token'])
    // A new login starts a new count.
    expect((await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, nowSeconds()))).status).toBe(200)
  })

  test('30 wrong codes in parallel: no more than 5 are checked', async () => {
    const user = await userWithTotp()
    const step = await passwordStep(user)
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => secondStep(step.mfa_token, String(100000 + i))))
    expect(results.every((result) => result.status === 400)).toBe(true)
    expect(results.filter((result) => 'code' in result.body)).toHaveLength(5)
    expect(results.filter((result) => 'mfa_token' in result.body)).toHaveLength(25)
  })

  test('wrong codes are limited per account across mfa_tokens, counted before the check; a right code clears the count', async () => {
    const user = await userWithTotp()
    for (let token = 0; token < 2; token++) {
      const step = await passwordStep(user)
      for (let i = 0; i < 5; i++) expect((await secondStep(step.mfa_token, '000000')).status).toBe(400)
    }
    const third = await passwordStep(user)
    const limited = await secondStep(third.mfa_token, totpAt(user.key, nowSeconds()))
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    t.clock.advance(15 * 60_000 + 1_000)
    const after = await secondStep((await passwordStep(user)).mfa_token, totpAt(user.key, nowSeconds()))
    expect(after.status).toBe(200)
    // Cleared by that success: nine wrong codes and a right one (the tenth try) get in; without the reset it would be the eleventh.
    const first = await passwordStep(user)
    for (let i = 0; i < 5; i++) expect((await secondStep(first.mfa_token, '000000')).status).toBe(400)
    const second = await passwordStep(user)
    for (let i = 0; i < 4; i++) expect((await secondStep(second.mfa_token, '000000')).status).toBe(400)
    t.clock.advance(30_000)
    expect((await secondStep(second.mfa_token, totpAt(user.key, nowSeconds()))).status).toBe(200)
  })

  test('a wrong password still answers the same 400, with no hint of the factor', async () => {
    const user = await userWithTotp()
    const response = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'wrong-password-here' } })
    expect(response.status).toBe(400)
    expect(response.body).not.toHaveProperty('mfa_token')
  })
})

describe('security log', () => {
  test('enabling and removing a factor, and a wrong second-step code, are security events of the account', async () => {
    const user = await userWithTotp()
    await secondStep((await passwordStep(user)).mfa_token, '000000')
    await t.call('DELETE', `/api/users/mfa/${user.factorId}/`, { token: user.access, body: { current_password: user.password } })
    const rows = await t.deps.db.select().from(securityEvents).where(eq(securityEvents.userId, user.id))
    const of = (type: string) => rows.filter((row) => row.type === type).map((row) => row.detail)
    expect(of('mfa_enabled')).toEqual([{ method: 'totp' }])
    expect(of('mfa_disabled')).toEqual([{ method: 'totp', factors_left: 0 }])
    expect(of('login_failed')).toEqual([{ reason: 'wrong_second_factor' }])
    const own = await t.call('GET', '/api/users/me/security-log/', { token: user.access })
    expect(own.body.results.map((event: { type: string }) => event.type)).toEqual(expect.arrayContaining(['mfa_enabled', 'mfa_disabled']))
  })
})

describe('password reset', () => {
  /** Asks for a reset and answers with its token: known only to the mailbox, so the test swaps the stored hash for one of its own. */
  async function resetPassword(email: string, password: string) {
    await t.call('POST', '/api/users/password/reset/', { body: { email } })
    const token = `a-token-the-test-knows-${crypto.randomUUID()}`
    const swapped = await t.deps.db
      .update(recoveryTokens)
      .set({ tokenHash: tokenHash(token) })
      .where(and(eq(recoveryTokens.email, email), eq(recoveryTokens.purpose, 'password_reset')))
      .returning()
    expect(swapped).toHaveLength(1)
    return t.call('POST', '/api/users/password/reset/confirm/', { body: { token, password } })
  }

  test('a reset sets the password but gives an account with a factor the step-up, not a session', async () => {
    const user = await userWithTotp()
    // An owner who had proven the address before setting the factor up.
    await t.deps.db.update(users).set({ emailVerified: true }).where(eq(users.email, user.email))
    const reset = await resetPassword(user.email, 'a-brand-new-passphrase')
    expect(reset.status).toBe(403)
    expect(reset.body).toMatchObject({ code: 'mfa_required', methods: ['totp', 'recovery_code'] })
    const done = await secondStep(reset.body.mfa_token, totpAt(user.key, nowSeconds()))
    expect(done.status).toBe(200)
    expect(claims(done.body.access).amr).toEqual(['pwd', 'otp'])
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'a-brand-new-passphrase' } })).status).toBe(403)
  })

  test("the reset that first proves an account's address removes the factors set up before: a squatter's app cannot hold the owner's reset back", async () => {
    // Someone registered the owner's address (never proven) and set up an authenticator app of their own.
    const squatted = await userWithTotp()
    const reset = await resetPassword(squatted.email, 'the-owners-own-passphrase')
    expect(reset.status).toBe(200)
    expect((await t.call('GET', '/api/users/mfa/', { token: reset.body.access })).body).toEqual({ factors: [], recovery_codes_left: 0 })
    expect((await t.call('POST', '/api/users/login/', { body: { email: squatted.email, password: 'the-owners-own-passphrase' } })).status).toBe(200)
    const [owner] = await t.deps.db.select({ id: users.id }).from(users).where(eq(users.email, squatted.email))
    const removed = await t.deps.db.select().from(securityEvents).where(and(eq(securityEvents.userId, owner!.id), eq(securityEvents.type, 'mfa_disabled')))
    expect(removed.map((event) => event.detail)).toEqual([{ method: 'totp', reason: 'password_reset' }])
  })
})

describe('users without a factor, and removing factors', () => {
  test('a user without a factor logs in as before: tokens at once, no amr claim', async () => {
    const user = await t.registerUser()
    const response = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    expect(response.status).toBe(200)
    expect(Object.keys(response.body).sort()).toEqual(['access', 'refresh'])
    expect(claims(response.body.access)).not.toHaveProperty('amr')
    expect(Object.keys(claims(response.body.access)).sort()).toEqual(['exp', 'iat', 'jti', 'sid', 'token_type', 'user_id'])
  })

  test('removing the last factor needs the password, takes the recovery codes with it, and the password alone signs in again', async () => {
    const user = await userWithTotp()
    const other = await t.registerUser()
    const notTheirs = await t.call('DELETE', `/api/users/mfa/${user.factorId}/`, { token: other.access, body: { current_password: other.password } })
    expect(notTheirs.status).toBe(404)
    const wrong = await t.call('DELETE', `/api/users/mfa/${user.factorId}/`, { token: user.access, body: { current_password: 'nope-nope-nope' } })
    expect(wrong.status).toBe(400)
    const removed = await t.call('DELETE', `/api/users/mfa/${user.factorId}/`, { token: user.access, body: { current_password: user.password } })
    expect(removed.status).toBe(204)
    expect((await t.call('GET', '/api/users/mfa/', { token: user.access })).body).toEqual({ factors: [], recovery_codes_left: 0 })
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
    const disabled = await t.deps.db
      .select()
      .from(mailOutbox)
      .where(and(eq(mailOutbox.toAddress, user.email), eq(mailOutbox.kind, 'mfa_disabled')))
    expect(disabled).toHaveLength(1)
  })

  test('the notices say what changed, and that the password alone signs in after the last factor went', () => {
    const brand = { productName: 'Acme', resetUrl: 'https://acme.test/reset', verifyUrl: 'https://acme.test/verify' }
    expect(renderMail(brand, 'mfa_enabled', { full_name: 'Ann', method: 'passkey' }).text).toContain('A passkey was added to your Acme account')
    const last = renderMail(brand, 'mfa_disabled', { full_name: '<Ann>', method: 'totp', factors_left: 0 })
    expect(last.text).toContain('An authenticator app was removed from your Acme account. Your password alone now signs in to it.')
    expect(last.html).toContain('&lt;Ann&gt;')
    expect(renderMail(brand, 'recovery_codes_regenerated', { full_name: 'Ann' }).subject).toBe('New recovery codes for your Acme account')
  })
})

describe('the typed client', () => {
  const client = () =>
    createUsersClient({ baseUrl: 'http://localhost', now: t.clock.now, fetcher: (url, init) => t.app.handle(new Request(url, init)) })

  test('login answers the mfa_required step as a value, loginMfa completes it, and the factor calls are typed', async () => {
    const user = await userWithTotp()
    const app = client()
    const first = await app.login({ email: user.email, password: user.password })
    if (!first.ok || first.data.step !== 'mfa_required') throw new Error(`expected the mfa step: ${JSON.stringify(first)}`)
    expect(first.data).toEqual({ step: 'mfa_required', mfa_token: expect.any(String), methods: ['totp', 'recovery_code'] })
    expect(app.tokens).toBeNull()
    const second = await app.loginMfa({ mfa_token: first.data.mfa_token, code: totpAt(user.key, nowSeconds()) })
    expect(second).toEqual({ ok: true, data: { step: 'signed_in', user: expect.objectContaining({ email: user.email }) } })
    expect(app.tokens).not.toBeNull()
    const list = await app.mfa.list()
    expect(list.ok && list.data.factors.map((factor) => factor.type)).toEqual(['totp'])
    const codes = await app.mfa.regenerateRecoveryCodes(user.password)
    expect(codes.ok && codes.data.recovery_codes).toHaveLength(10)
    expect((await app.mfa.remove(user.factorId, user.password)).ok).toBe(true)
    app.close()
  })

  test('a wrong code at the second step is a 400 naming the code field', async () => {
    const user = await userWithTotp()
    const app = client()
    const first = await app.login({ email: user.email, password: user.password })
    if (!first.ok || first.data.step !== 'mfa_required') throw new Error('expected the mfa step')
    const wrong = await app.loginMfa({ mfa_token: first.data.mfa_token, code: '000000' })
    expect(wrong.ok || wrong.error).toMatchObject({ kind: 'http', status: 400, fields: { code: expect.any(Array) } })
    expect(app.tokens).toBeNull()
    app.close()
  })

  test('without a factor, login signs in at once and the tokens are kept as before', async () => {
    const user = await t.registerUser()
    const app = client()
    const response = await app.login({ email: user.email, password: user.password })
    expect(response.ok && response.data.step).toBe('signed_in')
    expect(app.tokens).not.toBeNull()
    app.close()
  })
})
