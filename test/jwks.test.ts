import { afterAll, describe, expect, test } from 'bun:test'
import { generateKeyPairSync } from 'node:crypto'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, decodeJwt } from 'jose'
import { ConfigError, loadConfig } from '../src/config'
import { createTestApp, TEST_SECRET, type TestApp } from './support/app'

const pems = (type: 'ed25519' | 'p256') => {
  const { privateKey, publicKey } =
    type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

const apps: TestApp[] = []
afterAll(() => Promise.all(apps.map((app) => app.close())))
const app = async (env: Record<string, string>, label = 'jwks') => {
  const created = await createTestApp({ label, env, store: 'memory' })
  apps.push(created)
  return created
}

describe('HS256, the default', () => {
  test('publishes no keys', async () => {
    const t = await app({})
    const response = await t.call('GET', '/.well-known/jwks.json')
    expect(response.status).toBe(404)
    expect(response.body.code).toBe('not_found')
  })
})

describe.each([
  ['EdDSA', 'ed25519'],
  ['ES256', 'p256'],
] as const)('with an %s signing key', (alg, type) => {
  test('tokens carry a kid and verify against the published JWKS without the secret', async () => {
    const keys = pems(type)
    const t = await app({ JWT_PRIVATE_KEY: keys.privateKey.replaceAll('\n', '\\n') })
    const user = await t.registerUser()
    const header = decodeProtectedHeader(user.access)
    expect(header.alg).toBe(alg)
    expect(header.kid).toBeString()

    const jwks = await t.call('GET', '/.well-known/jwks.json')
    expect(jwks.status).toBe(200)
    expect(jwks.body.keys).toHaveLength(1)
    expect(jwks.body.keys[0]).toMatchObject({ kid: header.kid, alg, use: 'sig' })
    expect(jwks.body.keys[0].d).toBeUndefined()
    const { payload } = await jwtVerify(user.access, createLocalJWKSet(jwks.body), { algorithms: [alg] })
    expect(payload.user_id).toBe(user.id)
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).status).toBe(200)
  })

  test('an HS256 token signed with the secret is refused: the algorithm is pinned to the key', async () => {
    const t = await app({ JWT_PRIVATE_KEY: pems(type).privateKey })
    const user = await t.registerUser()
    const forged = await new SignJWT(decodeJwt(user.access)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_SECRET))
    expect((await t.call('GET', '/api/users/me/', { token: forged })).status).toBe(401)
  })
})

test('rotating the key logs no one out: the retired public key stays published and accepted', async () => {
  const oldKey = pems('ed25519')
  const newKey = pems('ed25519')
  const before = await app({ JWT_PRIVATE_KEY: oldKey.privateKey }, 'rotation')
  const user = await before.registerUser()

  const after = await createTestApp({
    sameDeploymentAs: before,
    env: { JWT_PRIVATE_KEY: newKey.privateKey, JWT_PREVIOUS_PUBLIC_KEYS: oldKey.publicKey },
  })
  expect((await after.call('GET', '/api/users/me/', { token: user.access })).status).toBe(200)
  const rotated = await after.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
  expect(rotated.status).toBe(200)
  expect(decodeProtectedHeader(rotated.body.access).kid).not.toBe(decodeProtectedHeader(user.access).kid)

  const jwks = (await after.call('GET', '/.well-known/jwks.json')).body
  expect(jwks.keys.map((key: { kid: string }) => key.kid)).toEqual([decodeProtectedHeader(rotated.body.access).kid, decodeProtectedHeader(user.access).kid])
  await jwtVerify(user.access, createLocalJWKSet(jwks))
  await jwtVerify(rotated.body.access, createLocalJWKSet(jwks))
})

test('a malformed key stops start-up naming the variable', () => {
  expect(() => loadConfig({ JWT_PRIVATE_KEY: 'not a pem' })).toThrow(ConfigError)
  expect(() => loadConfig({ JWT_PRIVATE_KEY: 'not a pem' })).toThrow(/^JWT_PRIVATE_KEY: /)
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  expect(() => loadConfig({ JWT_PRIVATE_KEY: rsa })).toThrow(/^JWT_PRIVATE_KEY: /)
  expect(() => loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: 'garbage' })).toThrow(/^JWT_PREVIOUS_PUBLIC_KEYS: /)
})
