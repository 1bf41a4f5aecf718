import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { StoreUnavailableError } from '../src/sessions/store'
import { setAdmin } from '../src/users/service'
import { createTestApp } from './support/app'

let t: Awaited<ReturnType<typeof createTestApp>>
beforeAll(async () => {
  t = await createTestApp({ label: 'users' })
})
afterAll(() => t.close())

// As `bun run admin:grant` does it.
const makeAdmin = (email: string) => setAdmin(t.deps, email, true)
const login = (email: string, password: string) => t.call('POST', '/api/users/login/', { body: { email, password } })

describe('GET /api/users/me/', () => {
  test("returns the caller's own record with the email and nothing secret", async () => {
    const user = await t.registerUser({ full_name: 'Me Myself' })
    const response = await t.call('GET', '/api/users/me/', { token: user.access })
    expect(response.status).toBe(200)
    expect(response.body).toEqual({ id: user.id, email: user.email, email_verified: false, full_name: 'Me Myself', profile_pic: null })
  })
})

describe('PUT and PATCH /api/users/update/', () => {
  test.each(['PUT', 'PATCH'])('%s changes the name without the current password', async (method) => {
    const user = await t.registerUser()
    const response = await t.call(method, '/api/users/update/', { token: user.access, body: { full_name: '  New Name ' } })
    expect(response.status).toBe(200)
    expect(response.body).toEqual({ id: user.id, email: user.email, email_verified: false, full_name: 'New Name', profile_pic: null })
    expect((await t.call('GET', '/api/users/me', { token: user.access })).body.full_name).toBe('New Name')
  })

  test('an empty body changes nothing', async () => {
    const user = await t.registerUser()
    const response = await t.call('PATCH', '/api/users/update', { token: user.access, body: {} })
    expect(response.status).toBe(200)
    expect(response.body.full_name).toBe(user.full_name)
  })

  test('changing the email needs the current password', async () => {
    const user = await t.registerUser()
    const missing = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { email: 'new@example.com' } })
    expect(missing.status).toBe(400)
    expect(Object.keys(missing.body)).toEqual(['current_password'])

    const wrong = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { email: 'new@example.com', current_password: 'wrong-password' },
    })
    expect(wrong.status).toBe(400)
    expect(wrong.body).toEqual({ current_password: ['Your current password is incorrect.'] })

    const right = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { email: ' New@Example.com ', current_password: user.password },
    })
    expect(right.status).toBe(200)
    expect(right.body.email).toBe('new@example.com')
    expect((await login('new@example.com', user.password)).status).toBe(200)
    expect((await login(user.email, user.password)).status).toBe(400)
  })

  test('sending the unchanged email needs no current password', async () => {
    const user = await t.registerUser()
    const response = await t.call('PUT', '/api/users/update/', { token: user.access, body: { email: user.email.toUpperCase(), full_name: 'Same Mail' } })
    expect(response.status).toBe(200)
    expect(response.body.full_name).toBe('Same Mail')
  })

  test('changing the password needs the current one and replaces it', async () => {
    const user = await t.registerUser()
    const missing = await t.call('PATCH', '/api/users/update/', { token: user.access, body: { password: 'another-long-passphrase' } })
    expect(missing.status).toBe(400)
    expect(Object.keys(missing.body)).toEqual(['current_password'])

    const changed = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { password: 'another-long-passphrase', current_password: user.password },
    })
    expect(changed.status).toBe(200)
    expect((await login(user.email, 'another-long-passphrase')).status).toBe(200)
    expect((await login(user.email, user.password)).status).toBe(400)
  })

  test('refuses a taken email, a weak password and an invalid name', async () => {
    const other = await t.registerUser()
    const user = await t.registerUser()
    const cases: [Record<string, unknown>, Record<string, string[]>][] = [
      [{ email: other.email.toUpperCase(), current_password: user.password }, { email: ['Email address already exists.'] }],
      [{ password: 'password123', current_password: user.password }, { password: ['This password is too common.'] }],
      [{ password: 'short', current_password: user.password }, { password: ['Ensure this field has at least 8 characters.'] }],
      [{ full_name: '' }, { full_name: ['This field may not be blank.'] }],
      [{ email: 'nope' }, { email: ['Enter a valid email address.'] }],
    ]
    for (const [body, errors] of cases) {
      const response = await t.call('PATCH', '/api/users/update/', { token: user.access, body })
      expect(response.status).toBe(400)
      expect(response.body).toEqual(errors)
    }
  })

  test('a password change whose other sessions cannot be ended is not kept', async () => {
    const user = await t.registerUser()
    const { sessions } = t.deps
    // The store fails between the guard's check and the change: the fault this ordering exists for.
    t.deps.sessions = { ...sessions, endAllForUser: () => Promise.reject(new StoreUnavailableError(new Error('down'))) }
    const response = await t.call('PATCH', '/api/users/update/', {
      token: user.access,
      body: { password: 'never-kept-passphrase', current_password: user.password },
    })
    t.deps.sessions = sessions
    expect(response.status).toBe(503)
    expect((await login(user.email, user.password)).status).toBe(200)
    expect((await login(user.email, 'never-kept-passphrase')).status).toBe(400)
  })

  test('needs an access token', async () => {
    const response = await t.call('PATCH', '/api/users/update/', { body: { full_name: 'x' } })
    expect(response.status).toBe(401)
  })
})

describe('GET /api/users/{id}/', () => {
  test("shows another user's record without the email", async () => {
    const viewer = await t.registerUser()
    const other = await t.registerUser({ full_name: 'Other Person' })
    const response = await t.call('GET', `/api/users/${other.id}/`, { token: viewer.access })
    expect(response.status).toBe(200)
    expect(response.body).toEqual({ id: other.id, full_name: 'Other Person', profile_pic: null })
  })

  test('shows the email on your own record and to an admin', async () => {
    const admin = await t.registerUser()
    await makeAdmin(admin.email)
    const other = await t.registerUser()
    expect((await t.call('GET', `/api/users/${other.id}`, { token: other.access })).body.email).toBe(other.email)
    expect((await t.call('GET', `/api/users/${other.id}`, { token: admin.access })).body.email).toBe(other.email)
  })

  test('answers 404 for an unknown or malformed id', async () => {
    const viewer = await t.registerUser()
    const unknown = await t.call('GET', `/api/users/${crypto.randomUUID()}/`, { token: viewer.access })
    expect(unknown.status).toBe(404)
    expect(unknown.body).toEqual({ detail: 'User not found.', code: 'user_not_found' })
    const malformed = await t.call('GET', '/api/users/not-a-uuid/', { token: viewer.access })
    expect(malformed.status).toBe(404)
    expect(malformed.body.code).toBe('not_found')
  })
})

describe('DELETE /api/users/{id}/', () => {
  test('lets users delete themselves', async () => {
    const user = await t.registerUser()
    const response = await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })
    expect(response.status).toBe(204)
    expect(response.body).toBeUndefined()
    expect((await login(user.email, user.password)).status).toBe(400)
  })

  test('forbids deleting someone else, whether or not they exist', async () => {
    const user = await t.registerUser()
    const other = await t.registerUser()
    for (const id of [other.id, crypto.randomUUID()]) {
      const response = await t.call('DELETE', `/api/users/${id}/`, { token: user.access })
      expect(response.status).toBe(403)
      expect(response.body).toEqual({ detail: 'You do not have permission to perform this action.', code: 'permission_denied' })
    }
    expect((await t.call('GET', '/api/users/me/', { token: other.access })).status).toBe(200)
  })

  test('lets an admin delete anyone, and answers 404 for an unknown id', async () => {
    const admin = await t.registerUser()
    await makeAdmin(admin.email)
    const other = await t.registerUser()
    expect((await t.call('DELETE', `/api/users/${other.id}`, { token: admin.access })).status).toBe(204)
    expect((await t.call('GET', '/api/users/me/', { token: other.access })).status).toBe(401)
    const missing = await t.call('DELETE', `/api/users/${other.id}`, { token: admin.access })
    expect(missing.status).toBe(404)
    expect(missing.body.code).toBe('user_not_found')
  })
})
