import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { and, desc, eq, sql } from 'drizzle-orm'
import { queryRows } from '../src/db'
import { recordSecurityEvent, SYSTEM } from '../src/security-log/service'
import { securityEvents, type SecurityEventRow, type SecurityEventType } from '../src/security-log/table'
import { setAdmin } from '../src/users/service'
import { users } from '../src/users/table'
import { waitFor } from './support/wait'
import { createTestApp, type TestApp } from './support/app'
import { secretsOf, startSmtpServer, type TestSmtp } from './support/smtp'

let smtp: TestSmtp
let t: TestApp

beforeAll(async () => {
  smtp = await startSmtpServer()
  t = await createTestApp({
    label: 'security_log',
    // One proxy in front: the client address is the last X-Forwarded-For entry.
    env: { TRUSTED_PROXY_HOPS: '1', SMTP_URL: smtp.url, MAIL_RETRY_MAX: '1s', MAIL_REQUESTS_PER_EMAIL: '100', SECURITY_LOG_RETENTION_DAYS: '30' },
  })
})

afterAll(async () => {
  await t?.close()
  await smtp?.stop()
})

let addresses = 0
/** A distinct client for each test: its address (through the trusted proxy) and user agent. */
function client() {
  const ip = `203.0.113.${++addresses}`
  return { ip, userAgent: `test-agent/${addresses}`, headers: { 'x-forwarded-for': `10.9.9.9, ${ip}`, 'user-agent': `test-agent/${addresses}` } }
}

const eventsOf = (userId: string, type?: SecurityEventType) =>
  t.deps.db
    .select()
    .from(securityEvents)
    .where(type ? and(eq(securityEvents.userId, userId), eq(securityEvents.type, type)) : eq(securityEvents.userId, userId))
    .orderBy(desc(securityEvents.at), desc(securityEvents.id))

async function onlyEvent(userId: string, type: SecurityEventType): Promise<SecurityEventRow> {
  const rows = await eventsOf(userId, type)
  expect(rows).toHaveLength(1)
  return rows[0]!
}

const byUser = (id: string) => ({ actor: 'user', actorId: id })

async function register(from = client()) {
  const email = `log-${crypto.randomUUID().slice(0, 8)}@example.com`
  const password = 'a-long-unusual-passphrase'
  const response = await t.call('POST', '/api/users/register/', { body: { email, full_name: 'Log Test', password }, headers: from.headers })
  expect(response.status).toBe(200)
  const me = await t.call('GET', '/api/users/me/', { token: response.body.access })
  return { id: me.body.id as string, email, password, access: response.body.access as string, refresh: response.body.refresh as string }
}

async function mailTo(address: string, subject: RegExp) {
  await waitFor(() => smtp.to(address).some((message) => subject.test(message.mail.subject ?? '')), `a message "${subject.source}" to ${address}`)
  return smtp.to(address).filter((message) => subject.test(message.mail.subject ?? '')).at(-1)!.mail
}

describe('each event appears after its action, with actor, address and user agent', () => {
  test('register', async () => {
    const from = client()
    const user = await register(from)
    expect(await onlyEvent(user.id, 'register')).toMatchObject({ ...byUser(user.id), ip: from.ip, userAgent: from.userAgent, detail: {} })
  })

  test('login, with the last_login it was written with', async () => {
    const user = await register()
    const from = client()
    const response = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password }, headers: from.headers })
    expect(response.status).toBe(200)
    const event = await onlyEvent(user.id, 'login')
    expect(event).toMatchObject({ ...byUser(user.id), ip: from.ip, userAgent: from.userAgent })
    const [row] = await t.deps.db.select().from(users).where(eq(users.id, user.id))
    expect(row!.lastLogin?.getTime()).toBe(event.at.getTime())
  })

  test('login_failed: a wrong password is recorded on the account', async () => {
    const user = await register()
    const from = client()
    const response = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'not-the-password' }, headers: from.headers })
    expect(response.status).toBe(400)
    expect(await onlyEvent(user.id, 'login_failed')).toMatchObject({ ...byUser(user.id), ip: from.ip, detail: { reason: 'wrong_password' } })
    expect(await eventsOf(user.id, 'login')).toHaveLength(0)
  })

  test('login_failed: an unknown email leaves a row with no user and nothing that names the email', async () => {
    const known = await register()
    const email = `nobody-${crypto.randomUUID().slice(0, 8)}@example.com`
    const from = client()
    const unknown = await t.call('POST', '/api/users/login/', { body: { email, password: 'not-the-password' }, headers: from.headers })
    const wrong = await t.call('POST', '/api/users/login/', { body: { email: known.email, password: 'not-the-password' }, headers: from.headers })
    // The same answer either way.
    expect(unknown.status).toBe(400)
    expect(unknown.body).toEqual(wrong.body)

    const rows = await t.deps.db.select().from(securityEvents).where(eq(securityEvents.ip, from.ip))
    expect(rows.map((row) => row.type).sort()).toEqual(['login_failed', 'login_failed'])
    const anonymous = rows.find((row) => row.userId === null)!
    expect(anonymous).toMatchObject({ actor: 'system', actorId: null, detail: { reason: 'unknown_account' } })
    // Nowhere in the table, in any column.
    const mentions = await queryRows(t.deps.db, sql`select id from security_events e where e::text ilike ${`%${email.split('@')[0]}%`}`)
    expect(mentions).toHaveLength(0)
  })

  test('logout, logout-all and ending one session by id', async () => {
    const user = await register()
    const second = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const third = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const from = client()

    expect((await t.call('POST', '/api/users/logout/', { token: user.access, body: { refresh: user.refresh }, headers: from.headers })).status).toBe(204)
    expect(await onlyEvent(user.id, 'logout')).toMatchObject({ ...byUser(user.id), ip: from.ip, userAgent: from.userAgent })

    const sessions = await t.call('GET', '/api/users/sessions/', { token: second.body.access })
    const other = sessions.body.find((session: { current: boolean }) => !session.current)
    expect((await t.call('DELETE', `/api/users/sessions/${other.id}/`, { token: second.body.access, headers: from.headers })).status).toBe(204)
    expect(await onlyEvent(user.id, 'session_ended')).toMatchObject({ ...byUser(user.id), ip: from.ip, detail: { session: other.id } })
    // Someone else's or an unknown session: refused, nothing recorded.
    expect((await t.call('DELETE', `/api/users/sessions/${crypto.randomUUID()}/`, { token: second.body.access })).status).toBe(404)
    expect(await eventsOf(user.id, 'session_ended')).toHaveLength(1)

    expect((await t.call('POST', '/api/users/logout-all/', { token: second.body.access, headers: from.headers })).status).toBe(204)
    const logouts = await eventsOf(user.id, 'logout')
    expect(logouts).toHaveLength(2)
    expect(logouts[0]!.detail).toEqual({ all: true, sessions: 1 })
  })

  test('refresh_reuse_detected, by the system, from the address that presented the used token', async () => {
    const user = await register()
    expect((await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })).status).toBe(200)
    t.clock.advance((t.deps.config.refreshGraceSeconds + 1) * 1000)
    const thief = client()
    expect((await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh }, headers: thief.headers })).status).toBe(401)
    expect(await onlyEvent(user.id, 'refresh_reuse_detected')).toMatchObject({ actor: 'system', actorId: null, ip: thief.ip, userAgent: thief.userAgent })
  })

  test('password_changed and email_changed, with no address or secret in them', async () => {
    const user = await register()
    const from = client()
    const newEmail = `changed-${crypto.randomUUID().slice(0, 8)}@example.com`
    const response = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { email: newEmail, password: 'another-long-passphrase', current_password: user.password },
      headers: from.headers,
    })
    expect(response.status).toBe(200)
    expect(await onlyEvent(user.id, 'password_changed')).toMatchObject({ ...byUser(user.id), ip: from.ip, detail: {} })
    expect(await onlyEvent(user.id, 'email_changed')).toMatchObject({ ...byUser(user.id), ip: from.ip, detail: {} })
    const stored = JSON.stringify(await eventsOf(user.id))
    for (const secret of [newEmail, user.email, 'another-long-passphrase', user.password]) expect(stored).not.toContain(secret)
    // A name change alone is not a security event.
    await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Renamed' } })
    expect(await eventsOf(user.id)).toHaveLength(3)
  })

  test('password_reset_requested for an account, and nothing at all for an unknown email', async () => {
    const user = await register()
    const from = client()
    expect((await t.call('POST', '/api/users/password/reset/', { body: { email: user.email }, headers: from.headers })).status).toBe(202)
    expect(await onlyEvent(user.id, 'password_reset_requested')).toMatchObject({ actor: 'system', ip: from.ip, userAgent: from.userAgent })

    const stranger = client()
    const unknown = await t.call('POST', '/api/users/password/reset/', { body: { email: `nobody-${crypto.randomUUID()}@example.com` }, headers: stranger.headers })
    expect(unknown.status).toBe(202)
    expect(await t.deps.db.select().from(securityEvents).where(eq(securityEvents.ip, stranger.ip))).toHaveLength(0)
  })

  test('password_reset by the holder of the reset message, and nothing for a wrong token', async () => {
    const user = await register()
    await t.call('POST', '/api/users/password/reset/', { body: { email: user.email } })
    const { token } = secretsOf(await mailTo(user.email, /Reset your/))
    const wrong = await t.call('POST', '/api/users/password/reset/confirm/', { body: { token: 'x'.repeat(43), password: 'a-fresh-long-passphrase' } })
    expect(wrong.status).toBe(400)
    expect(await eventsOf(user.id, 'password_reset')).toHaveLength(0)

    const from = client()
    const confirmed = await t.call('POST', '/api/users/password/reset/confirm/', { body: { token, password: 'a-fresh-long-passphrase' }, headers: from.headers })
    expect(confirmed.status).toBe(200)
    expect(await onlyEvent(user.id, 'password_reset')).toMatchObject({ ...byUser(user.id), ip: from.ip })
  })

  test('email_verified', async () => {
    const user = await register()
    const { token } = secretsOf(await mailTo(user.email, /Confirm your email/))
    const from = client()
    expect((await t.call('POST', '/api/users/email/verify/', { body: { token }, headers: from.headers })).status).toBe(200)
    expect(await onlyEvent(user.id, 'email_verified')).toMatchObject({ ...byUser(user.id), ip: from.ip })
  })

  test('admin_granted and admin_revoked by the command (the system), only when the flag changes', async () => {
    const user = await register()
    await setAdmin(t.deps, user.email, true)
    await setAdmin(t.deps, user.email, true)
    await setAdmin(t.deps, user.email, false)
    expect(await onlyEvent(user.id, 'admin_granted')).toMatchObject({ actor: 'system', actorId: null, ip: null })
    expect(await onlyEvent(user.id, 'admin_revoked')).toMatchObject({ actor: 'system' })
  })
})

describe('an action that fails and rolls back leaves no event', () => {
  test('a registration whose transaction fails after the event was written', async () => {
    const lifecycle = t.deps.lifecycle
    const from = client()
    t.deps.lifecycle = { ...lifecycle, created: async () => Promise.reject(new Error('the hook fails')) }
    try {
      const email = `rolled-${crypto.randomUUID().slice(0, 8)}@example.com`
      const response = await t.call('POST', '/api/users/register/', { body: { email, full_name: 'Rolled Back', password: 'a-long-unusual-passphrase' }, headers: from.headers })
      expect(response.status).toBe(500)
      expect(await t.deps.db.select().from(users).where(eq(users.email, email))).toHaveLength(0)
    } finally {
      t.deps.lifecycle = lifecycle
    }
    expect(await t.deps.db.select().from(securityEvents).where(eq(securityEvents.ip, from.ip))).toHaveLength(0)
  })

  test('a password change whose transaction fails after the event was written', async () => {
    const user = await register()
    const lifecycle = t.deps.lifecycle
    t.deps.lifecycle = { ...lifecycle, updated: async () => Promise.reject(new Error('the hook fails')) }
    try {
      const response = await t.call('PATCH', '/api/users/update/', {
        token: user.access,
        body: { password: 'another-long-passphrase', current_password: user.password },
      })
      expect(response.status).toBe(500)
    } finally {
      t.deps.lifecycle = lifecycle
    }
    expect(await eventsOf(user.id, 'password_changed')).toHaveLength(0)
    // The old password still works: the change itself was rolled back with its event.
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
  })

  test('an email change to a taken address', async () => {
    const user = await register()
    const other = await register()
    const response = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { email: other.email, current_password: user.password } })
    expect(response.status).toBe(400)
    expect(await eventsOf(user.id, 'email_changed')).toHaveLength(0)
  })

  test('a registration with a taken email', async () => {
    const user = await register()
    const from = client()
    const again = await t.call('POST', '/api/users/register/', { body: { email: user.email, full_name: 'Again', password: 'a-long-unusual-passphrase' }, headers: from.headers })
    expect(again.status).toBe(400)
    expect(await eventsOf(user.id, 'register')).toHaveLength(1)
    expect(await t.deps.db.select().from(securityEvents).where(eq(securityEvents.ip, from.ip))).toHaveLength(0)
  })
})

describe('GET /api/users/me/security-log/', () => {
  test("the caller's own events only, newest first, in the contract's shape", async () => {
    const from = client()
    const user = await register(from)
    const stranger = await register()
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'wrong-password' }, headers: from.headers })
    t.clock.advance(1_000)
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password }, headers: from.headers })
    await t.call('POST', '/api/users/login/', { body: { email: stranger.email, password: stranger.password } })

    const log = await t.call('GET', '/api/users/me/security-log/', { token: user.access })
    expect(log.status).toBe(200)
    expect(log.body).toMatchObject({ count: 3, next: null, previous: null })
    expect(log.body.results.map((event: { type: string }) => event.type)).toEqual(['login', 'login_failed', 'register'])
    expect(Object.keys(log.body.results[0]).sort()).toEqual(['at', 'id', 'ip', 'type', 'user_agent'])
    expect(log.body.results[0]).toMatchObject({ ip: from.ip, user_agent: from.userAgent })
    expect(new Date(log.body.results[0].at).getTime()).toBe(t.clock.now())
  })

  test('pages with DRF links, and a page past the last is a 404', async () => {
    const user = await register()
    for (let i = 0; i < 4; i++) await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const first = await t.call('GET', '/api/users/me/security-log/?page_size=2', { token: user.access })
    expect(first.body).toMatchObject({ count: 5, previous: null, next: 'http://users.test/api/users/me/security-log/?page_size=2&page=2' })
    const last = await t.call('GET', '/api/users/me/security-log/?page_size=2&page=3', { token: user.access })
    expect(last.body).toMatchObject({ count: 5, next: null, previous: 'http://users.test/api/users/me/security-log/?page_size=2&page=2' })
    expect(last.body.results.map((event: { type: string }) => event.type)).toEqual(['register'])
    const seen = new Set([...first.body.results, ...last.body.results].map((event: { id: string }) => event.id))
    expect(seen.size).toBe(3)
    expect((await t.call('GET', '/api/users/me/security-log/?page=4&page_size=2', { token: user.access })).status).toBe(404)
    expect((await t.call('GET', '/api/users/me/security-log/?page=0', { token: user.access })).status).toBe(400)
    expect((await t.call('GET', '/api/users/me/security-log/')).status).toBe(401)
  })
})

describe('retention', () => {
  test('the job deletes events older than SECURITY_LOG_RETENTION_DAYS and keeps the rest', async () => {
    expect(t.deps.config.securityLogRetentionDays).toBe(30)
    const user = await register()
    const day = 86_400_000
    const at = (daysAgo: number) => new Date(t.clock.now() - daysAgo * day)
    for (const daysAgo of [31, 30.5, 29.9])
      await recordSecurityEvent(t.deps.db, { type: 'admin_granted', userId: user.id, actor: SYSTEM, detail: { daysAgo } }, at(daysAgo))

    expect(await t.deps.securityLogRetention.prune()).toBeGreaterThanOrEqual(2)
    expect((await eventsOf(user.id, 'admin_granted')).map((row) => row.detail.daysAgo)).toEqual([29.9])
    expect(await eventsOf(user.id, 'register')).toHaveLength(1)

    // Time passes: the registration's turn comes too.
    t.clock.advance(31 * day)
    await t.deps.securityLogRetention.prune()
    expect(await eventsOf(user.id)).toHaveLength(0)
  })

  test('SECURITY_LOG_RETENTION_DAYS is 90 days by default, and a bad value names the variable', async () => {
    const { loadConfig } = await import('../src/config')
    expect(loadConfig({}).securityLogRetentionDays).toBe(90)
    expect(() => loadConfig({ SECURITY_LOG_RETENTION_DAYS: '0' })).toThrow(/SECURITY_LOG_RETENTION_DAYS/)
    expect(() => loadConfig({ SECURITY_LOG_RETENTION_DAYS: 'soon' })).toThrow(/SECURITY_LOG_RETENTION_DAYS/)
  })
})
