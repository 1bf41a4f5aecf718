import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeJwt, jwtVerify, SignJWT, UnsecuredJWT } from 'jose'
import { eq } from 'drizzle-orm'
import { users } from '../src/users/table'
import { createTestApp, TEST_SECRET } from './support/app'

let t: Awaited<ReturnType<typeof createTestApp>>
beforeAll(async () => {
  t = await createTestApp({ label: 'auth' })
})
afterAll(() => t.close())

const secret = new TextEncoder().encode(TEST_SECRET)

describe('register', () => {
  test('returns a token pair whose access token the chat service can decode with HS256', async () => {
    const response = await t.call('POST', '/api/users/register/', {
      body: { email: 'chat@example.com', full_name: 'Chat Reader', password: 'a-long-unusual-passphrase' },
    })
    expect(response.status).toBe(200)
    expect(Object.keys(response.body).sort()).toEqual(['access', 'refresh'])
    // What PyJWT does: jwt.decode(token, SECRET_KEY, algorithms=["HS256"]) and read user_id.
    const { payload, protectedHeader } = await jwtVerify(response.body.access, secret, { algorithms: ['HS256'] })
    expect(protectedHeader.alg).toBe('HS256')
    expect(payload.token_type).toBe('access')
    expect(payload.user_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(typeof payload.jti).toBe('string')
    expect(payload.aud).toBeUndefined()
    expect(payload.exp! - payload.iat!).toBe(15 * 60)
    const refresh = decodeJwt(response.body.refresh)
    expect(refresh.token_type).toBe('refresh')
    expect(refresh.exp! - refresh.iat!).toBe(14 * 24 * 3600)
    expect(refresh.sid).toBe(payload.sid)
  })

  test('trims the email and name, and stores the email lower-cased', async () => {
    const user = await t.registerUser({ email: '  Mixed.Case@Example.COM ', full_name: '  Ann Trim  ' })
    const me = await t.call('GET', '/api/users/me/', { token: user.access })
    expect(me.body).toEqual({ id: user.id, email: 'mixed.case@example.com', email_verified: false, full_name: 'Ann Trim', profile_pic: null })
  })

  test('rejects an email that differs from a taken one only by case', async () => {
    await t.registerUser({ email: 'taken@example.com' })
    const response = await t.call('POST', '/api/users/register/', {
      body: { email: 'TAKEN@example.com', full_name: 'Other', password: 'a-long-unusual-passphrase' },
    })
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ email: ['Email address already exists.'] })
  })

  test('names every missing field', async () => {
    const response = await t.call('POST', '/api/users/register/', { body: {} })
    expect(response.status).toBe(400)
    expect(response.body).toEqual({
      email: ['This field is required.'],
      full_name: ['This field is required.'],
      password: ['This field is required.'],
    })
  })

  test.each([
    [{ password: 'short' }, 'password', 'Ensure this field has at least 8 characters.'],
    [{ password: 'x'.repeat(129) }, 'password', 'Ensure this field has no more than 128 characters.'],
    [{ password: 'Password1' }, 'password', 'This password is too common.'],
    [{ email: 'not-an-email' }, 'email', 'Enter a valid email address.'],
    [{ full_name: '   ' }, 'full_name', 'This field may not be blank.'],
    [{ full_name: 'n'.repeat(251) }, 'full_name', 'Ensure this field has no more than 250 characters.'],
    [{ full_name: 42 }, 'full_name', 'Not a valid string.'],
  ])('rejects %p with a message on its field', async (override, field, message) => {
    const body = { email: `v-${crypto.randomUUID()}@example.com`, full_name: 'Valid Name', password: 'a-long-unusual-passphrase', ...override }
    const response = await t.call('POST', '/api/users/register/', { body })
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ [field]: [message] })
  })

  test('keeps a 128-character password whole and ignores unknown fields', async () => {
    const password = 'p'.repeat(127) + 'q'
    const user = await t.registerUser({ password })
    const login = await t.call('POST', '/api/users/login/', { body: { email: user.email, password, is_admin: true } })
    expect(login.status).toBe(200)
    const truncated = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'p'.repeat(127) } })
    expect(truncated.status).toBe(400)
  })

  test('does not make an admin from the request body', async () => {
    const response = await t.call('POST', '/api/users/register/', {
      body: { email: 'sneaky@example.com', full_name: 'Sneaky', password: 'a-long-unusual-passphrase', is_admin: true },
    })
    expect(response.status).toBe(200)
    const other = await t.registerUser()
    const claims = decodeJwt(response.body.access)
    const view = await t.call('GET', `/api/users/${other.id}/`, { token: response.body.access })
    expect(view.body.email).toBeUndefined()
    expect(claims.user_id).toBeString()
  })
})

describe('login', () => {
  test('returns a token pair for the right password, whatever the email case', async () => {
    const user = await t.registerUser({ email: 'login@example.com' })
    const response = await t.call('POST', '/api/users/login/', { body: { email: ' LOGIN@example.com', password: user.password } })
    expect(response.status).toBe(200)
    expect(decodeJwt(response.body.access).user_id).toBe(user.id)
  })

  test('records the time of the last login', async () => {
    const user = await t.registerUser()
    await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const { findUserById } = await import('../src/users/lookup')
    const row = await findUserById(t.deps.db, user.id)
    expect(row?.lastLogin?.getTime()).toBe(t.clock.now())
  })

  test('gives the same 400 for a wrong password and an unknown email', async () => {
    const user = await t.registerUser()
    const wrongPassword = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'not-the-password' } })
    const unknownEmail = await t.call('POST', '/api/users/login/', { body: { email: 'nobody@example.com', password: 'not-the-password' } })
    expect(wrongPassword.status).toBe(400)
    expect(unknownEmail.status).toBe(400)
    expect(wrongPassword.body).toEqual(unknownEmail.body)
    expect(Object.keys(wrongPassword.body).sort()).toEqual(['email', 'password'])
  })

  test('gives an inactive account the same 400 as wrong credentials, even with the right password', async () => {
    const user = await t.registerUser()
    await t.deps.db.update(users).set({ isActive: false }).where(eq(users.id, user.id))
    const inactive = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })
    const wrongPassword = await t.call('POST', '/api/users/login/', { body: { email: user.email, password: 'not-the-password' } })
    expect(inactive.status).toBe(400)
    expect(inactive.body).toEqual(wrongPassword.body)
  })

  test('names missing credentials', async () => {
    const response = await t.call('POST', '/api/users/login/', { body: { email: 'a@b.c' } })
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ password: ['This field is required.'] })
  })
})

describe('refresh', () => {
  test('returns a new pair in the same session', async () => {
    const user = await t.registerUser()
    t.clock.advance(1000)
    const response = await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
    expect(response.status).toBe(200)
    expect(response.body.refresh).not.toBe(user.refresh)
    expect(decodeJwt(response.body.access).sid).toBe(decodeJwt(user.access).sid)
    const me = await t.call('GET', '/api/users/me/', { token: response.body.access })
    expect(me.status).toBe(200)
  })

  test('refuses an access token, a garbage string and an expired refresh token', async () => {
    const user = await t.registerUser()
    for (const refresh of [user.access, 'not.a.token', '']) {
      const response = await t.call('POST', '/api/users/refresh/', { body: { refresh } })
      expect(response.status).toBeOneOf([400, 401])
    }
    const wrongType = await t.call('POST', '/api/users/refresh/', { body: { refresh: user.access } })
    expect(wrongType.status).toBe(401)
    expect(wrongType.body).toEqual({ detail: 'Token is invalid or expired', code: 'token_not_valid' })
    expect(wrongType.headers.get('www-authenticate')).toBe('JWT realm="api"')

    t.clock.advance(15 * 24 * 3600 * 1000)
    const expired = await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
    expect(expired.status).toBe(401)
    t.clock.advance(-15 * 24 * 3600 * 1000)
  })

  test("refuses a deleted user's refresh token", async () => {
    const user = await t.registerUser()
    // Straight in the table, so the sessions stay; the instances are told, as every change of the service tells them.
    await t.deps.db.delete(users).where(eq(users.id, user.id))
    await t.deps.userCache.invalidate(user.id)
    const response = await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
    expect(response.status).toBe(401)
    expect(response.body.code).toBe('user_not_found')
  })

  test("refuses an inactive user's refresh token as user_inactive", async () => {
    const user = await t.registerUser()
    await t.deps.db.update(users).set({ isActive: false }).where(eq(users.id, user.id))
    await t.deps.userCache.invalidate(user.id)
    const response = await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
    expect(response.status).toBe(401)
    expect(response.body).toEqual({ detail: 'User is inactive', code: 'user_inactive' })
  })
})

describe('access tokens', () => {
  test('are accepted with the JWT and Bearer schemes, with or without the trailing slash', async () => {
    const user = await t.registerUser()
    for (const [scheme, path] of [['JWT', '/api/users/me/'], ['Bearer', '/api/users/me'], ['bearer', '/api/users/me/']]) {
      const response = await t.call('GET', path!, { headers: { authorization: `${scheme} ${user.access}` } })
      expect(response.status).toBe(200)
      expect(response.body.id).toBe(user.id)
    }
  })

  test('are required, with a WWW-Authenticate challenge', async () => {
    const response = await t.call('GET', '/api/users/me/')
    expect(response.status).toBe(401)
    expect(response.body).toEqual({ detail: 'Authentication credentials were not provided.', code: 'not_authenticated' })
    expect(response.headers.get('www-authenticate')).toBe('JWT realm="api"')
  })

  test('expire after 15 minutes', async () => {
    const user = await t.registerUser()
    t.clock.advance(15 * 60 * 1000 + 1000)
    const response = await t.call('GET', '/api/users/me/', { token: user.access })
    t.clock.advance(-(15 * 60 * 1000 + 1000))
    expect(response.status).toBe(401)
    expect(response.body.code).toBe('token_not_valid')
  })

  test('refuse a refresh token, alg none, another algorithm, another secret and a bad user id', async () => {
    const user = await t.registerUser()
    const claims = decodeJwt(user.access)
    const now = Math.floor(t.clock.now() / 1000)
    const forged = [
      user.refresh,
      new UnsecuredJWT(claims).encode(),
      await new SignJWT(claims).setProtectedHeader({ alg: 'HS512' }).sign(secret),
      await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret')),
      await new SignJWT({ ...claims, user_id: 'not-a-uuid' }).setProtectedHeader({ alg: 'HS256' }).sign(secret),
      await new SignJWT({ ...claims, exp: now + 60, token_type: undefined }).setProtectedHeader({ alg: 'HS256' }).sign(secret),
      user.access.slice(0, -2),
    ]
    for (const token of forged) {
      const response = await t.call('GET', '/api/users/me/', { headers: { authorization: `JWT ${token}` } })
      expect(response.status).toBe(401)
      expect(response.body.code).toBeOneOf(['token_not_valid', 'not_authenticated'])
    }
  })

  test('of a user who no longer exists are refused as user_not_found', async () => {
    const user = await t.registerUser()
    // Straight in the database, so that only the missing row can refuse the token.
    await t.deps.db.delete(users).where(eq(users.id, user.id))
    await t.deps.userCache.invalidate(user.id)
    const response = await t.call('GET', '/api/users/me/', { token: user.access })
    expect(response.status).toBe(401)
    expect(response.body).toEqual({ detail: 'User not found', code: 'user_not_found' })
  })

  test('of an inactive user are refused as user_inactive', async () => {
    const user = await t.registerUser()
    await t.deps.db.update(users).set({ isActive: false }).where(eq(users.id, user.id))
    await t.deps.userCache.invalidate(user.id)
    const response = await t.call('GET', '/api/users/me/', { token: user.access })
    expect(response.status).toBe(401)
    expect(response.body).toEqual({ detail: 'User is inactive', code: 'user_inactive' })
    expect(response.headers.get('www-authenticate')).toBe('JWT realm="api"')
  })
})
