import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { and, eq } from 'drizzle-orm'
import { outboxEvents } from '../src/events/table'
import { securityEvents } from '../src/security-log/table'
import { setAdmin } from '../src/users/service'
import { createTestApp, type TestApp } from './support/app'

let t: TestApp
/** A second instance of the same deployment: its own connections and user cache, the same database and Redis. */
let other: TestApp
let admin: Awaited<ReturnType<TestApp['registerUser']>>

const ADMIN_IP = '198.51.100.7'
const asAdmin = () => ({ token: admin.access, headers: { 'x-forwarded-for': ADMIN_IP, 'user-agent': 'operator-console' } })

beforeAll(async () => {
  const env = { TRUSTED_PROXY_HOPS: '1' }
  t = await createTestApp({ label: 'admin', env })
  other = await createTestApp({ label: 'admin', env, sameDeploymentAs: t })
  admin = await t.registerUser({ full_name: 'Olga Operator' })
  await setAdmin(t.deps, admin.email, true)
})

afterAll(async () => {
  await other?.close()
  await t?.close()
})

const adminEvents = (userId: string, type: string) =>
  t.deps.db
    .select()
    .from(securityEvents)
    .where(and(eq(securityEvents.userId, userId), eq(securityEvents.type, type as 'admin_logout')))

describe('who may call the admin API', () => {
  test('a non-admin gets 403 permission_denied on every admin route of the OpenAPI spec, and a stranger 401', async () => {
    const spec = await t.call('GET', '/api/users/swagger/json')
    const routes = Object.entries(spec.body.paths as Record<string, Record<string, unknown>>)
      .filter(([path]) => path.startsWith('/api/users/admin/'))
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => ({ method: method.toUpperCase(), path })))
    expect(routes.length).toBeGreaterThanOrEqual(5)

    const user = await t.registerUser()
    const target = await t.registerUser()
    for (const { method, path } of routes) {
      const url = path.replace('{id}', target.id)
      // A body that would be accepted from an admin: the refusal is for who asks, not what.
      const body = method === 'POST' ? { reason: 'spam' } : undefined
      const refused = await t.call(method, url, { token: user.access, body })
      expect({ route: `${method} ${path}`, status: refused.status, body: refused.body }).toEqual({
        route: `${method} ${path}`,
        status: 403,
        body: { detail: 'You do not have permission to perform this action.', code: 'permission_denied' },
      })
      expect((await t.call(method, url, { body })).status).toBe(401)
    }
    // Nothing happened to the target.
    expect((await t.call('GET', '/api/users/me/', { token: target.access })).status).toBe(200)
    expect(await t.deps.db.select().from(securityEvents).where(eq(securityEvents.actor, 'admin'))).toEqual([])
  })

  test('revoking admin rights takes effect on the next request', async () => {
    const former = await t.registerUser()
    await setAdmin(t.deps, former.email, true)
    expect((await t.call('GET', '/api/users/admin/users/', { token: former.access })).status).toBe(200)
    await setAdmin(t.deps, former.email, false)
    expect((await t.call('GET', '/api/users/admin/users/', { token: former.access })).status).toBe(403)
  })
})

describe('finding accounts', () => {
  test('by part of the email or the start of a name, with the admin-only fields', async () => {
    const tag = crypto.randomUUID().slice(0, 8)
    const ann = await t.registerUser({ email: `ann.${tag}@find.test`, full_name: `Ann Findable${tag}` })
    await t.call('POST', '/api/users/login/', { body: { email: ann.email, password: ann.password } })

    const byEmail = await t.call('GET', `/api/users/admin/users/?search=${tag}@FIND`, asAdmin())
    expect(byEmail.status).toBe(200)
    expect(byEmail.body).toMatchObject({ count: 1, next: null, previous: null })
    const found = byEmail.body.results[0]
    expect(found).toMatchObject({ id: ann.id, email: ann.email, email_verified: false, is_active: true, is_admin: false, full_name: `Ann Findable${tag}` })
    expect(new Date(found.date_joined).getTime()).toBeLessThanOrEqual(new Date(found.last_login).getTime())

    const byName = await t.call('GET', `/api/users/admin/users/?search=findable${tag}`, asAdmin())
    expect(byName.body.results.map((user: { id: string }) => user.id)).toEqual([ann.id])
    // LIKE's wildcards are plain characters in a search.
    expect((await t.call('GET', '/api/users/admin/users/?search=%25_%25', asAdmin())).body.count).toBe(0)
  })

  test('pages ordered by email, with DRF links', async () => {
    const tag = crypto.randomUUID().slice(0, 8)
    for (const name of ['c', 'a', 'b']) await t.registerUser({ email: `${name}.${tag}@paged.test` })
    const first = await t.call('GET', `/api/users/admin/users/?search=${tag}&page_size=2`, asAdmin())
    expect(first.body.count).toBe(3)
    expect(first.body.results.map((user: { email: string }) => user.email[0])).toEqual(['a', 'b'])
    expect(first.body.next).toBe(`http://users.test/api/users/admin/users/?search=${tag}&page_size=2&page=2`)
    const second = await t.call('GET', `/api/users/admin/users/?search=${tag}&page_size=2&page=2`, asAdmin())
    expect(second.body.results.map((user: { email: string }) => user.email[0])).toEqual(['c'])
    expect((await t.call('GET', `/api/users/admin/users/?search=${tag}&page_size=2&page=3`, asAdmin())).status).toBe(404)
  })
})

describe('disabling and enabling', () => {
  test('disable ends every session on every instance at once; login then answers as wrong credentials', async () => {
    const user = await t.registerUser()
    const elsewhere = await other.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    expect((await other.call('GET', '/api/users/me/', { token: elsewhere.body.access })).status).toBe(200)

    const disabled = await t.call('POST', `/api/users/admin/users/${user.id.toUpperCase()}/disable/`, { ...asAdmin(), body: { reason: 'spam wave' } })
    expect(disabled.status).toBe(200)
    expect(disabled.body).toMatchObject({ id: user.id, is_active: false })

    // The other instance, which had the user cached, refuses both sessions' tokens at once.
    for (const access of [elsewhere.body.access, user.access]) expect((await other.call('GET', '/api/users/me/', { token: access })).status).toBe(401)
    expect((await other.call('POST', '/api/users/refresh/', { body: { refresh: elsewhere.body.refresh } })).status).toBe(401)

    const login = await other.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const wrong = await other.call('POST', '/api/users/login/', { body: { email: user.email, password: 'not-the-password' } })
    expect(login.status).toBe(400)
    expect(login.body).toEqual(wrong.body)

    const [event] = await adminEvents(user.id, 'account_disabled')
    expect(event).toMatchObject({ actor: 'admin', actorId: admin.id, ip: ADMIN_IP, userAgent: 'operator-console', detail: { reason: 'spam wave' } })
    const updates = await t.deps.db.select().from(outboxEvents).where(and(eq(outboxEvents.userId, user.id), eq(outboxEvents.name, 'user.updated')))
    expect(updates).toHaveLength(1)

    // Again: nothing changes, nothing more is recorded or emitted.
    expect((await t.call('POST', `/api/users/admin/users/${user.id}/disable/`, { ...asAdmin(), body: { reason: 'again' } })).status).toBe(200)
    expect(await adminEvents(user.id, 'account_disabled')).toHaveLength(1)
  })

  test('enable lets the account log in again, with account_enabled and user.updated', async () => {
    const user = await t.registerUser()
    await t.call('POST', `/api/users/admin/users/${user.id}/disable/`, { ...asAdmin(), body: { reason: 'check' } })
    const enabled = await t.call('POST', `/api/users/admin/users/${user.id}/enable/`, asAdmin())
    expect(enabled.status).toBe(200)
    expect(enabled.body).toMatchObject({ id: user.id, is_active: true })
    expect((await other.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
    expect(await adminEvents(user.id, 'account_enabled')).toMatchObject([{ actor: 'admin', actorId: admin.id, ip: ADMIN_IP }])
    const updates = await t.deps.db.select().from(outboxEvents).where(and(eq(outboxEvents.userId, user.id), eq(outboxEvents.name, 'user.updated')))
    expect(updates).toHaveLength(2)
  })

  test('an unknown account is a 404 and records nothing; a bad id a 404; a missing reason a 400', async () => {
    const missing = crypto.randomUUID()
    for (const action of ['disable', 'enable', 'logout']) {
      const response = await t.call('POST', `/api/users/admin/users/${missing}/${action}/`, { ...asAdmin(), body: { reason: 'x' } })
      expect(response.status).toBe(404)
      expect(response.body.code).toBe('user_not_found')
    }
    expect(await t.deps.db.select().from(securityEvents).where(eq(securityEvents.userId, missing))).toEqual([])
    expect((await t.call('POST', '/api/users/admin/users/not-a-uuid/enable/', asAdmin())).status).toBe(404)
    const user = await t.registerUser()
    const noReason = await t.call('POST', `/api/users/admin/users/${user.id}/disable/`, { ...asAdmin(), body: {} })
    expect(noReason.status).toBe(400)
    expect(noReason.body).toEqual({ reason: ['This field is required.'] })
  })

  test('an admin cannot disable their own account', async () => {
    const response = await t.call('POST', `/api/users/admin/users/${admin.id}/disable/`, { ...asAdmin(), body: { reason: 'oops' } })
    expect(response.status).toBe(403)
    expect((await t.call('GET', '/api/users/me/', { token: admin.access })).status).toBe(200)
  })
})

describe('logging a user out', () => {
  test('ends every session on every instance at once, with admin_logout saying how many', async () => {
    const user = await t.registerUser()
    const second = await other.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const response = await t.call('POST', `/api/users/admin/users/${user.id}/logout/`, asAdmin())
    expect(response.status).toBe(204)
    for (const access of [user.access, second.body.access]) expect((await other.call('GET', '/api/users/me/', { token: access })).status).toBe(401)
    expect(await adminEvents(user.id, 'admin_logout')).toMatchObject([{ actor: 'admin', actorId: admin.id, ip: ADMIN_IP, detail: { sessions: 2 } }])
    // The account itself is untouched: it logs in again.
    expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
  })
})

describe('the audit log', () => {
  test('filters by user and by type, newest first, with every field', async () => {
    const user = await t.registerUser()
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'wrong-password' } })
    t.clock.advance(1_000)
    await t.call('POST', `/api/users/admin/users/${user.id}/logout/`, asAdmin())

    const mine = await t.call('GET', `/api/users/admin/audit/?user=${user.id.toUpperCase()}`, asAdmin())
    expect(mine.status).toBe(200)
    expect(mine.body.count).toBe(3)
    expect(mine.body.results.map((event: { type: string }) => event.type)).toEqual(['admin_logout', 'login_failed', 'register'])
    expect(mine.body.results[0]).toMatchObject({ user_id: user.id, actor: 'admin', actor_id: admin.id, ip: ADMIN_IP, user_agent: 'operator-console', detail: { sessions: 1 } })

    const failed = await t.call('GET', `/api/users/admin/audit/?user=${user.id}&type=login_failed`, asAdmin())
    expect(failed.body.results).toMatchObject([{ type: 'login_failed', actor: 'user', actor_id: user.id, detail: { reason: 'wrong_password' } }])

    const everyone = await t.call('GET', '/api/users/admin/audit/?type=admin_logout&page_size=1', asAdmin())
    expect(everyone.body.count).toBeGreaterThanOrEqual(2)
    expect(everyone.body.results[0].user_id).toBe(user.id)
    expect(everyone.body.next).toBe('http://users.test/api/users/admin/audit/?type=admin_logout&page_size=1&page=2')
    const page2 = await t.call('GET', everyone.body.next.replace('http://users.test', ''), asAdmin())
    expect(page2.body.results[0].id).not.toBe(everyone.body.results[0].id)
  })

  test('a bad filter is a 400 naming it; a page past the last a 404', async () => {
    expect((await t.call('GET', '/api/users/admin/audit/?type=made_up', asAdmin())).body).toHaveProperty('type')
    expect((await t.call('GET', '/api/users/admin/audit/?user=nope', asAdmin())).body).toHaveProperty('user')
    expect((await t.call('GET', `/api/users/admin/audit/?user=${crypto.randomUUID()}&page=2`, asAdmin())).status).toBe(404)
    expect((await t.call('GET', `/api/users/admin/audit/?user=${crypto.randomUUID()}`, asAdmin())).body).toEqual({ count: 0, next: null, previous: null, results: [] })
  })
})
