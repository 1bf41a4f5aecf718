import { afterAll, beforeAll, expect, test } from 'bun:test'
import { and, eq, isNull } from 'drizzle-orm'
import { buildDeps } from '../src/deps'
import { outboxEvents } from '../src/events/table'
import { importDjangoUsers } from '../src/migration/django-import'
import { pictureLimits } from '../src/users/picture'
import { capturingLogger, createTestApp, testConfig } from './support/app'
import { createOldDatabase, oldRow } from './support/django'
import { png } from './support/images'
import { eventsEnv, openTestBroker, testPublisher, type TestBroker } from './support/broker'
import { waitFor } from './support/wait'

// The embedded default (PGlite, in-process sessions) runs the same code; this is the smoke subset of the API on it.
let t: Awaited<ReturnType<typeof createTestApp>>
let broker: TestBroker
let env: Record<string, string>
const { logger, lines } = capturingLogger()
// PGlite compiles its WebAssembly and runs initdb first: seconds, not milliseconds.
beforeAll(async () => {
  broker = await openTestBroker('pglite')
  const queue = broker.name('posts')
  env = eventsEnv({ queues: [queue], current: broker.name('users'), exchange: broker.name('exchange') })
  broker.track('exchange', env.EVENTS_EXCHANGE!)
  await broker.legacyConsumer(queue)
  t = await createTestApp({ driver: 'pglite', store: 'memory', env, logger })
}, 60_000)
afterAll(async () => {
  await t.close()
  await broker.close()
})

test('register, login, me, update, refresh, get and delete work on PGlite', async () => {
  const user = await t.registerUser({ email: 'Embedded@Example.com', full_name: 'Embedded' })
  expect(user.email).toBe('Embedded@Example.com')
  const login = await t.call('POST', '/api/users/login', { body: { email: 'embedded@example.com', password: user.password } })
  expect(login.status).toBe(200)
  const me = await t.call('GET', '/api/users/me/', { token: login.body.access })
  expect(me.body).toEqual({ id: user.id, email: 'embedded@example.com', email_verified: false, full_name: 'Embedded', profile_pic: null })
  const update = await t.call('PATCH', '/api/users/update/', { token: login.body.access, body: { full_name: 'Renamed' } })
  expect(update.body.full_name).toBe('Renamed')
  const refresh = await t.call('POST', '/api/users/refresh/', { body: { refresh: login.body.refresh } })
  expect(refresh.status).toBe(200)
  const other = await t.registerUser()
  const view = await t.call('GET', `/api/users/${user.id}/`, { token: other.access })
  expect(view.body).toEqual({ id: user.id, full_name: 'Renamed', profile_pic: null })
  expect((await t.call('DELETE', `/api/users/${user.id}/`, { token: other.access })).status).toBe(403)
  expect((await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })).status).toBe(204)
  expect((await t.call('GET', '/api/users/me/', { token: user.access })).status).toBe(401)
})

test('a taken email is a field error on PGlite too', async () => {
  await t.registerUser({ email: 'dup@example.com' })
  const response = await t.call('POST', '/api/users/register/', {
    body: { email: 'DUP@example.com', full_name: 'Dup', password: 'a-long-unusual-passphrase' },
  })
  expect(response.status).toBe(400)
  expect(response.body).toEqual({ email: ['Email address already exists.'] })
})

test('without a broker events wait in the outbox, the log says so once, and a broker configured later gets the backlog in order', async () => {
  const user = await t.registerUser({ full_name: 'Backlog 1' })
  await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Backlog 2' } })
  const pending = await t.deps.db
    .select()
    .from(outboxEvents)
    .where(and(eq(outboxEvents.userId, user.id), isNull(outboxEvents.publishedAt)))
  expect(pending.map((row) => row.name)).toEqual(['user.created', 'user.updated'])
  expect(lines.filter((line) => line.msg.includes('no broker configured'))).toHaveLength(1)

  // What a restart with AMQP_URL set builds over the same database.
  const config = testConfig({ ...env, DATA_DIR: t.dataDir })
  const publisher = testPublisher()(config, logger)
  const restarted = await buildDeps(config, { database: t.database, publisher, stores: t.stores }, logger, t.clock)
  try {
    const names = () => broker.deliveries.filter((d) => d.body.id === user.id).map((d) => d.body.full_name)
    await waitFor(() => names().length === 2, 'the backlog')
    expect(names()).toEqual(['Backlog 1', 'Backlog 2'])
  } finally {
    await Promise.all([restarted.relay.stop({ deadlineMs: 1_000 }), restarted.mailRelay.stop({ deadlineMs: 1_000 })])
    await publisher.close()
  }
})

test('pictures and the directory work on PGlite', async () => {
  const user = await t.registerUser({ full_name: 'Pglite Pictured' })
  const body = new FormData()
  body.append('profile_pic', new File([png()], 'p.png', { type: 'image/png' }))
  const upload = await t.app.handle(
    new Request('http://localhost/api/users/update/', { method: 'PATCH', headers: { authorization: `JWT ${user.access}` }, body }),
  )
  expect(upload.status).toBe(200)
  const url = ((await upload.json()) as { profile_pic: string }).profile_pic
  expect((await t.app.handle(new Request(`http://localhost${new URL(url).pathname}`))).status).toBe(200)

  const search = await t.call('GET', '/api/users/?search=pict', { token: user.access })
  expect(search.body).toEqual({ count: 1, next: null, previous: null, results: [{ id: user.id, full_name: 'Pglite Pictured', profile_pic: url }] })
  const other = await t.registerUser({ full_name: 'Another Pglite User' })
  const byIds = await t.call('GET', `/api/users/?ids=${user.id},${crypto.randomUUID()},${other.id}`, { token: user.access })
  expect(byIds.body.count).toBe(2)
  expect(byIds.body.results.map((found: { id: string }) => found.id)).toEqual([other.id, user.id])
})

test('the Django import writes into the embedded database, and the imported user logs in', async () => {
  const fixtures = await Bun.file(new URL('./fixtures/django-password-hashes.json', import.meta.url)).json()
  const { password, encoded } = fixtures.cases[0]
  const row = oldRow({ email: 'Old.Embedded@Example.com', full_name: 'Old Embedded', password: encoded })
  const old = await createOldDatabase([row])
  try {
    const summary = await importDjangoUsers({ db: t.deps.db, files: t.deps.files, clock: t.clock, logger, pictureLimits: pictureLimits(t.deps.config) }, { from: old.url })
    expect(summary).toMatchObject({ imported: 1, skipped: [] })
    const again = await importDjangoUsers({ db: t.deps.db, files: t.deps.files, clock: t.clock, logger, pictureLimits: pictureLimits(t.deps.config) }, { from: old.url })
    expect(again).toMatchObject({ imported: 0, updated: 0, unchanged: 1 })
    const login = await t.call('POST', '/api/users/login/', { body: { email: 'old.embedded@example.com', password } })
    expect(login.status).toBe(200)
  } finally {
    await old.drop()
  }
})
