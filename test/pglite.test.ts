import { afterAll, beforeAll, expect, test } from 'bun:test'
import { createTestApp } from './support/app'

// The embedded default (PGlite, in-process sessions) runs the same code; this is the smoke subset of the API on it.
let t: Awaited<ReturnType<typeof createTestApp>>
// PGlite compiles its WebAssembly and runs initdb first: seconds, not milliseconds.
beforeAll(async () => {
  t = await createTestApp({ driver: 'pglite', store: 'memory' })
}, 60_000)
afterAll(() => t.close())

test('register, login, me, update, refresh, get and delete work on PGlite', async () => {
  const user = await t.registerUser({ email: 'Embedded@Example.com', full_name: 'Embedded' })
  expect(user.email).toBe('Embedded@Example.com')
  const login = await t.call('POST', '/api/users/login', { body: { email: 'embedded@example.com', password: user.password } })
  expect(login.status).toBe(200)
  const me = await t.call('GET', '/api/users/me/', { token: login.body.access })
  expect(me.body).toEqual({ id: user.id, email: 'embedded@example.com', full_name: 'Embedded', profile_pic: null })
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
