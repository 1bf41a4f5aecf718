import { describe, expect, test } from 'bun:test'
import { SignJWT } from 'jose'
import { manualClock } from '../src/clock'
import { constantTimeEqual, createTokens } from '../src/sessions/tokens'

const secret = 'tokens-test-secret-tokens-test-secret'
const key = new TextEncoder().encode(secret)
const clock = manualClock(1_800_000_000_000)
const now = clock.now() / 1000
const userId = crypto.randomUUID()
const base = { token_type: 'access', user_id: userId, sid: 'session-1', jti: 'j1', iat: now, exp: now + 60 }

const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256' }) =>
  new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key)

describe('HS256 verification (the hot path)', async () => {
  const tokens = await createTokens({ secret, accessSeconds: 900, refreshSeconds: 1209600 }, clock)
  const withAudience = await createTokens({ secret, accessSeconds: 900, refreshSeconds: 1209600, audience: 'users', issuer: 'auth' }, clock)

  test('accepts what it issues and what simplejwt-shaped claims sign correctly', async () => {
    const { pair } = await tokens.issuePair(userId, 'session-1')
    expect((await tokens.verify(pair.access, 'access'))?.user_id).toBe(userId)
    expect((await tokens.verify(await sign(base), 'access'))?.sid).toBe('session-1')
  })

  test.each([
    ['expired at this very second', { ...base, exp: now }],
    ['not yet valid', { ...base, nbf: now + 10 }],
    ['without iat', { ...base, iat: undefined }],
    ['without jti', { ...base, jti: undefined }],
    ['without exp', { ...base, exp: undefined }],
    ['with a string exp', { ...base, exp: String(now + 60) }],
    ['of the other type', { ...base, token_type: 'refresh' }],
    ['without a session', { ...base, sid: undefined }],
  ])('refuses a token %s', async (_, claims) => {
    expect(await tokens.verify(await sign(claims), 'access')).toBeNull()
  })

  test('refuses a critical header, a fourth segment, a changed payload and a re-encoded signature', async () => {
    const good = await sign(base)
    const [header, payload, signature] = good.split('.')
    const changed = Buffer.from(JSON.stringify({ ...base, user_id: crypto.randomUUID() })).toString('base64url')
    for (const token of [
      await sign({ ...base }, { alg: 'HS256', crit: ['b64'], b64: true }),
      `${good}.extra`,
      `${header}.${changed}.${signature}`,
      `${header}.${payload}.${signature}=`,
      `${header}.${payload}.`,
    ])
      expect(await tokens.verify(token, 'access')).toBeNull()
  })

  test('the synchronous check answers as the asynchronous one, token for token', async () => {
    const { pair } = await tokens.issuePair(userId, 'session-1')
    const good = await sign(base)
    const [header, payload, signature] = pair.access.split('.')
    const flipped = `${signature!.slice(0, -2)}${signature!.at(-2) === 'A' ? 'B' : 'A'}${signature!.at(-1)}`
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`
    for (const [token, type] of [
      [pair.access, 'access'], [pair.refresh, 'refresh'], [pair.access, 'refresh'], [good, 'access'],
      [`${header}.${payload}.${flipped}`, 'access'], [none, 'access'], [`${header}.${payload}`, 'access'],
    ] as const)
      expect(tokens.verifySync!(token, type)).toEqual(await tokens.verify(token, type))
    expect(tokens.verifySync!(pair.access, 'access')?.user_id).toBe(userId)
    expect(tokens.verifySync!(`${header}.${payload}.${flipped}`, 'access')).toBeNull()
  })

  test('signatures are compared whole, whatever their length', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true)
    expect(constantTimeEqual('abc', 'abd')).toBe(false)
    expect(constantTimeEqual('abc', 'ab')).toBe(false)
    expect(constantTimeEqual('', '')).toBe(true)
  })

  test('checks aud and iss only when they are configured', async () => {
    expect(await withAudience.verify(await sign(base), 'access')).toBeNull()
    expect(await withAudience.verify(await sign({ ...base, aud: 'users', iss: 'auth' }), 'access')).not.toBeNull()
    expect(await withAudience.verify(await sign({ ...base, aud: ['other', 'users'], iss: 'auth' }), 'access')).not.toBeNull()
    expect(await withAudience.verify(await sign({ ...base, aud: 'other', iss: 'auth' }), 'access')).toBeNull()
    expect(await tokens.verify(await sign({ ...base, aud: 'anything' }), 'access')).not.toBeNull()
  })
})
