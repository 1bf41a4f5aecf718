import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { createPasswords } from '../src/users/passwords'
import { loadConfig } from '../src/config'
import { users } from '../src/users/table'
import { createTestApp, type TestApp } from './support/app'

type Fixtures = {
  cases: { hasher: string; password: string; encoded: string }[]
  unusable: { encoded: string }[]
  wrong_passwords: string[]
}
const fixtures: Fixtures = await Bun.file(new URL('./fixtures/django-password-hashes.json', import.meta.url)).json()

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ label: 'django_login', store: 'memory' })
})
afterAll(() => t.close())

/** A user as the import writes one: the old hash kept as it was. */
async function insertUser(passwordHash: string) {
  const id = crypto.randomUUID()
  const email = `imported-${id.slice(0, 8)}@example.com`
  const now = new Date()
  await t.deps.db.insert(users).values({ id, email, fullName: 'Imported', passwordHash, createdAt: now, updatedAt: now })
  return { id, email }
}

const storedHash = async (id: string) => (await t.deps.db.select().from(users).where(eq(users.id, id)))[0]!.passwordHash
const login = (email: string, password: string) => t.call('POST', '/api/users/login/', { body: { email, password } })

describe('users imported from the Django service', () => {
  test('every fixture password logs in, and the login leaves an argon2id hash behind', async () => {
    const results = await Promise.all(
      fixtures.cases.map(async (fixture) => {
        const user = await insertUser(fixture.encoded)
        const response = await login(user.email, fixture.password)
        return { hasher: fixture.hasher, status: response.status, hash: await storedHash(user.id), user, fixture }
      }),
    )
    for (const result of results) {
      expect({ hasher: result.hasher, status: result.status }).toEqual({ hasher: result.hasher, status: 200 })
      expect(result.hash).toStartWith('$argon2id$')
    }
    // The upgraded hash takes the same password, and the old one is gone.
    const { user, fixture } = results[0]!
    expect((await login(user.email, fixture.password)).status).toBe(200)
    expect(await storedHash(user.id)).not.toBe(fixture.encoded)
  }, 60_000)

  test('a wrong password fails for every format and leaves the old hash in place', async () => {
    const byHasher = new Map(fixtures.cases.map((fixture) => [fixture.hasher, fixture]))
    for (const fixture of byHasher.values()) {
      const user = await insertUser(fixture.encoded)
      for (const wrong of fixtures.wrong_passwords) expect((await login(user.email, wrong || 'x')).status).toBe(400)
      expect(await storedHash(user.id)).toBe(fixture.encoded)
    }
  }, 60_000)

  test('an unusable password never matches', async () => {
    const user = await insertUser(fixtures.unusable[0]!.encoded)
    for (const attempt of ['', 'x', fixtures.unusable[0]!.encoded, fixtures.unusable[0]!.encoded.slice(1)])
      expect((await login(user.email, attempt || ' ')).status).toBe(400)
  })

  test('an old hash is checked against the password with surrounding whitespace stripped, as DRF did', async () => {
    const fixture = fixtures.cases.find((c) => c.hasher === 'pbkdf2_sha256')!
    const user = await insertUser(fixture.encoded)
    expect((await login(user.email, `  ${fixture.password}\n`)).status).toBe(200)
    expect((await login(user.email, fixture.password)).status).toBe(200)
  })
})

describe('our own hashes', () => {
  test('an argon2id hash below the configured cost is upgraded at login', async () => {
    const weak = await Bun.password.hash('a-long-unusual-passphrase', { algorithm: 'argon2id', memoryCost: 32, timeCost: 1 })
    const user = await insertUser(weak)
    expect((await login(user.email, 'a-long-unusual-passphrase')).status).toBe(200)
    expect(await storedHash(user.id)).toStartWith('$argon2id$v=19$m=64,t=1,')
  })

  test('a hash at the configured cost is left alone', async () => {
    const registered = await t.registerUser()
    const before = await storedHash(registered.id)
    expect((await login(registered.email, registered.password)).status).toBe(200)
    expect(await storedHash(registered.id)).toBe(before)
  })
})

describe('login timing', () => {
  // The service's real argon2id cost, not the tests' cheap one: the dummy must take measurable time.
  const passwords = createPasswords(loadConfig({}).argon2, 1)
  const median = (times: number[]) => times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!
  const timed = async (run: () => Promise<unknown>) => {
    const start = performance.now()
    await run()
    return performance.now() - start
  }

  test('unusable, unknown and malformed hashes cost about what an unknown email costs (the dummy argon2id)', async () => {
    const paths = {
      dummy: () => passwords.verifyDummy('a-guess'),
      unusable: () => passwords.verify('a-guess', fixtures.unusable[0]!.encoded),
      unknown: () => passwords.verify('a-guess', 'md5$salt$0123456789abcdef0123456789abcdef'),
      malformed: () => passwords.verify('a-guess', '$argon2id$v=19$m=7168,t=5,p=1$not-a-hash'),
    }
    const times = Object.fromEntries(Object.keys(paths).map((name) => [name, [] as number[]]))
    await paths.dummy()
    // Interleaved, so that load from elsewhere on the machine falls on every path alike.
    for (let round = 0; round < 7; round++) for (const [name, run] of Object.entries(paths)) times[name]!.push(await timed(run))
    const dummy = median(times.dummy!)
    // Half the dummy's time is a generous floor: before, these answered in well under a millisecond.
    const tooFast = ['unusable', 'unknown', 'malformed'].filter((name) => median(times[name]!) < dummy / 2)
    expect({ tooFast, times }).toEqual({ tooFast: [], times })
    expect(await paths.unusable()).toBe(false)
  })
})
