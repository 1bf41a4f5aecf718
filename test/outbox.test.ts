import { afterAll, beforeAll, expect, test } from 'bun:test'
import { asc, eq, sql } from 'drizzle-orm'
import { outboxEvents } from '../src/events/table'
import { setAdmin } from '../src/users/service'
import { users } from '../src/users/table'
import { createTestApp } from './support/app'

// No broker here: these are the rows the relay would publish, written in the change's transaction.
let t: Awaited<ReturnType<typeof createTestApp>>
beforeAll(async () => {
  t = await createTestApp({ label: 'outbox' })
})
afterAll(() => t.close())

const eventsOf = async (userId: string) =>
  (await t.deps.db.select().from(outboxEvents).where(eq(outboxEvents.userId, userId)).orderBy(asc(outboxEvents.seq))).map((row) => ({
    name: row.name,
    payload: row.payload,
  }))

test('register, update and delete each store one event with the old wire body', async () => {
  const user = await t.registerUser({ full_name: 'Stored' })
  await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Stored Again' } })
  await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })

  // The old body, with email_verified added (the contract allows it).
  const record = { id: user.id, email: user.email, email_verified: false, profile_pic: null }
  expect(await eventsOf(user.id)).toEqual([
    { name: 'user.created', payload: { ...record, full_name: 'Stored' } },
    { name: 'user.updated', payload: { ...record, full_name: 'Stored Again' } },
    { name: 'user.deleted', payload: { id: user.id } },
  ])
})

test('an email or password change stores user.updated with the new record', async () => {
  const user = await t.registerUser()
  const email = `changed-${crypto.randomUUID().slice(0, 6)}@example.com`
  await t.call('PATCH', '/api/users/update/', { token: user.access, body: { email, current_password: user.password } })
  await t.call('PATCH', '/api/users/update/', { token: user.access, body: { password: 'another-long-passphrase', current_password: user.password } })

  const updates = (await eventsOf(user.id)).filter((event) => event.name === 'user.updated')
  expect(updates.map((event) => (event.payload as { email: string }).email)).toEqual([email, email])
})

test('an update that changes nothing stores no event', async () => {
  const user = await t.registerUser({ full_name: 'Unchanged' })
  const response = await t.call('PUT', '/api/users/update/', { token: user.access, body: { full_name: 'Unchanged', email: user.email.toUpperCase() } })
  expect(response.status).toBe(200)
  expect((await eventsOf(user.id)).map((event) => event.name)).toEqual(['user.created'])
})

test('a change whose event cannot be stored is not made either', async () => {
  await t.deps.db.execute(sql`alter table outbox_events add constraint test_unrecordable check (payload->>'full_name' is distinct from 'Unrecordable')`)
  const user = await t.registerUser({ full_name: 'Recordable' })

  const response = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Unrecordable' } })
  expect(response.status).toBe(500)
  expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.full_name).toBe('Recordable')

  const email = `unrecordable-${crypto.randomUUID().slice(0, 6)}@example.com`
  const registration = await t.call('POST', '/api/users/register/', { body: { email, full_name: 'Unrecordable', password: 'a-long-unusual-passphrase' } })
  expect(registration.status).toBe(500)
  expect(await t.deps.db.select().from(users).where(eq(users.email, email))).toEqual([])
})

test('granting admin rights stores user.updated, and granting them again stores nothing', async () => {
  const user = await t.registerUser()
  expect((await setAdmin(t.deps, user.email, true))?.isAdmin).toBe(true)
  expect((await setAdmin(t.deps, user.email, true))?.isAdmin).toBe(true)
  expect((await eventsOf(user.id)).map((event) => event.name)).toEqual(['user.created', 'user.updated'])
})

test('a rejected registration stores no event', async () => {
  const user = await t.registerUser()
  const duplicate = await t.call('POST', '/api/users/register/', { body: { email: user.email, full_name: 'Twin', password: 'a-long-unusual-passphrase' } })
  expect(duplicate.status).toBe(400)
  const [row] = await t.deps.db.select({ n: sql<number>`count(*)`.mapWith(Number) }).from(outboxEvents).where(sql`${outboxEvents.payload}->>'full_name' = 'Twin'`)
  expect(row!.n).toBe(0)
})
