import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeJwt } from 'jose'
import { createTestApp, type TestApp } from './support/app'
import { REDIS_KINDS } from './support/redis'

// Every case runs on Redis, on a Redis Cluster and on the in-process store: each must behave the same.
for (const store of [...REDIS_KINDS, 'memory'] as const) {
  describe(`sessions on ${store}`, () => {
    let t: TestApp
    beforeAll(async () => {
      t = await createTestApp({ label: `sessions_${store}`, store, env: { TRUSTED_PROXY_HOPS: '1' } })
    })
    afterAll(() => t.close())

    const refresh = (token: string) => t.call('POST', '/api/users/refresh/', { body: { refresh: token } })
    const me = (access: string) => t.call('GET', '/api/users/me/', { token: access })
    const afterGrace = () => t.clock.advance(11_000)

    test('refresh returns a working pair and the presented token stops working after the grace period', async () => {
      const user = await t.registerUser()
      const rotated = await refresh(user.refresh)
      expect(rotated.status).toBe(200)
      expect((await me(rotated.body.access)).status).toBe(200)
      afterGrace()
      const again = await refresh(user.refresh)
      expect(again.status).toBe(401)
      expect(again.body.code).toBe('token_not_valid')
    })

    test('a just-rotated token presented again within the grace period gets the same successor pair', async () => {
      const user = await t.registerUser()
      const first = await refresh(user.refresh)
      t.clock.advance(5_000)
      const second = await refresh(user.refresh)
      expect(second.status).toBe(200)
      expect(second.body).toEqual(first.body)
    })

    test('reuse after the grace period ends the whole session, the newest tokens included', async () => {
      const user = await t.registerUser()
      const newest = (await refresh(user.refresh)).body
      afterGrace()
      expect((await refresh(user.refresh)).status).toBe(401)
      expect((await me(newest.access)).status).toBe(401)
      expect((await refresh(newest.refresh)).status).toBe(401)
    })

    test('a session refreshed all along ends 30 days after its login, and no token outlives that', async () => {
      const user = await t.registerUser()
      const loginAt = Math.floor(t.clock.now() / 1000)
      const end = loginAt + 30 * 86400
      let token = user.refresh
      for (let day = 13; day <= 26; day += 13) {
        t.clock.advance(13 * 86400 * 1000)
        const rotated = await refresh(token)
        expect(rotated.status).toBe(200)
        token = rotated.body.refresh
        expect(decodeJwt(token).exp).toBeLessThanOrEqual(end)
        expect(decodeJwt(rotated.body.access).exp).toBeLessThanOrEqual(end)
      }
      expect(decodeJwt(token).exp).toBe(end)
      t.clock.advance((end - Math.floor(t.clock.now() / 1000)) * 1000 - 60_000)
      const lastMinute = await refresh(token)
      expect(lastMinute.status).toBe(200)
      t.clock.advance(61_000)
      const after = await refresh(lastMinute.body.refresh)
      expect(after.status).toBe(401)
      expect(after.body.code).toBe('token_not_valid')
      // The store ends it too (session-store.test.ts); logging in again starts a new 30 days.
      expect((await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).status).toBe(200)
    })

    test('concurrent refreshes with one token continue a single family', async () => {
      const user = await t.registerUser()
      const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(user.refresh)))
      expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200))
      expect(new Set(responses.map((response) => response.body.refresh)).size).toBe(1)
      const [winner] = responses
      expect((await refresh(winner!.body.refresh)).status).toBe(200)
    })

    test('logout ends that session only, its access token included', async () => {
      const user = await t.registerUser()
      const other = (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).body
      const response = await t.call('POST', '/api/users/logout/', { token: user.access, body: { refresh: user.refresh } })
      expect(response.status).toBe(204)
      expect((await me(user.access)).status).toBe(401)
      expect((await refresh(user.refresh)).status).toBe(401)
      expect((await me(other.access)).status).toBe(200)
    })

    test("logout refuses another user's refresh token and ends nothing", async () => {
      const user = await t.registerUser()
      const victim = await t.registerUser()
      const response = await t.call('POST', '/api/users/logout/', { token: user.access, body: { refresh: victim.refresh } })
      expect(response.status).toBe(400)
      expect(response.body).toEqual({ refresh: ['Token is invalid or expired'] })
      expect((await me(victim.access)).status).toBe(200)
    })

    test('logout-all ends every session of the user and no one else’s', async () => {
      const user = await t.registerUser()
      const second = (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).body
      const bystander = await t.registerUser()
      expect((await t.call('POST', '/api/users/logout-all/', { token: user.access })).status).toBe(204)
      for (const access of [user.access, second.access]) expect((await me(access)).status).toBe(401)
      for (const token of [user.refresh, second.refresh]) expect((await refresh(token)).status).toBe(401)
      expect((await me(bystander.access)).status).toBe(200)
    })

    test("a password change ends every other session and keeps the caller's", async () => {
      const user = await t.registerUser()
      const other = (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).body
      const changed = await t.call('PATCH', '/api/users/update/', {
        token: user.access,
        body: { password: 'a-brand-new-passphrase', current_password: user.password },
      })
      expect(changed.status).toBe(200)
      expect((await me(user.access)).status).toBe(200)
      expect((await refresh(user.refresh)).status).toBe(200)
      expect((await me(other.access)).status).toBe(401)
      expect((await refresh(other.refresh)).status).toBe(401)
    })

    test('a name change ends no session', async () => {
      const user = await t.registerUser()
      const other = (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).body
      await t.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'Renamed' } })
      expect((await me(other.access)).status).toBe(200)
    })

    test('deleting the account ends all of its sessions', async () => {
      const user = await t.registerUser()
      const other = (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).body
      expect((await t.call('DELETE', `/api/users/${user.id}/`, { token: user.access })).status).toBe(204)
      for (const token of [user.access, other.access]) expect(await t.deps.sessions.isActive(user.id, decodeJwt(token).sid as string)).toBe(false)
    })

    test('the session list shows each live session with its client and marks the current one', async () => {
      const user = await t.registerUser()
      const second = await t.call('POST', '/api/users/login/', {
        body: { email: user.email, password: user.password },
        headers: { 'user-agent': 'TestBrowser/1.0', 'x-forwarded-for': '203.0.113.7' },
      })
      const list = await t.call('GET', '/api/users/sessions/', { token: second.body.access })
      expect(list.status).toBe(200)
      expect(list.body).toHaveLength(2)
      const current = list.body.find((session: { current: boolean }) => session.current)
      expect(current).toMatchObject({ id: decodeJwt(second.body.access).sid, ip_address: '203.0.113.7', user_agent: 'TestBrowser/1.0' })
      expect(Date.parse(current.created_at)).toBe(t.clock.now())
      expect(Date.parse(current.last_used_at)).toBe(t.clock.now())
    })

    test("one session can be ended by id, and another user's is a 404", async () => {
      const user = await t.registerUser()
      const stranger = await t.registerUser()
      const sid = decodeJwt(user.access).sid as string
      const forbidden = await t.call('DELETE', `/api/users/sessions/${sid}/`, { token: stranger.access })
      expect(forbidden.status).toBe(404)
      expect((await me(user.access)).status).toBe(200)
      const second = (await t.call('POST', '/api/users/login/', { body: { email: user.email, password: user.password } })).body
      expect((await t.call('DELETE', `/api/users/sessions/${sid}/`, { token: second.access })).status).toBe(204)
      expect((await me(user.access)).status).toBe(401)
      expect((await me(second.access)).status).toBe(200)
    })

    describe('brute-force limits', () => {
      const login = (email: string, password: string, ip = '198.51.100.1') =>
        t.call('POST', '/api/users/login/', { body: { email, password }, headers: { 'x-forwarded-for': ip } })

      /** Counts password verifications (real or dummy) while `run` is in flight. */
      async function countingHashes<T>(run: () => Promise<T>) {
        const { passwords } = t.deps
        let hashed = 0
        t.deps.passwords = { ...passwords, verify: (...args) => (hashed++, passwords.verify(...args)), verifyDummy: (p) => (hashed++, passwords.verifyDummy(p)) }
        try {
          return { result: await run(), hashed }
        } finally {
          t.deps.passwords = passwords
        }
      }
      const afterWindow = () => t.clock.advance(15 * 60 * 1000 + 1000)

      test('failed logins are limited per account and address with Retry-After, and a limited attempt hashes nothing', async () => {
        const user = await t.registerUser()
        for (let i = 0; i < 10; i++) expect((await login(user.email, 'wrong-password', '192.0.2.1')).status).toBe(400)
        const { result: limited, hashed } = await countingHashes(() => login(user.email, user.password, '192.0.2.1'))
        expect(limited.status).toBe(429)
        expect(limited.body.code).toBe('throttled')
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
        expect(hashed).toBe(0)
        afterWindow()
        expect((await login(user.email, user.password, '192.0.2.1')).status).toBe(200)
      })

      test("a stranger's wrong passwords stop the stranger's address, never the owner's", async () => {
        const owner = await t.registerUser()
        for (let i = 0; i < 12; i++) expect([400, 429]).toContain((await login(owner.email, 'wrong-password', '203.0.113.66')).status)
        expect((await login(owner.email, 'wrong-password', '203.0.113.66')).status).toBe(429)
        expect((await login(owner.email, owner.password, '203.0.113.66')).status).toBe(429)
        expect((await login(owner.email, owner.password, '198.51.100.5')).status).toBe(200)
        // And again, while the stranger keeps at it: ten more every window never lock the owner out.
        afterWindow()
        for (let i = 0; i < 10; i++) expect((await login(owner.email, 'wrong-password', '203.0.113.66')).status).toBe(400)
        expect((await login(owner.email, owner.password, '198.51.100.5')).status).toBe(200)
      })

      test('a parallel burst of wrong passwords gets exactly the limit of hashes, and a right password inside it gets no further', async () => {
        const user = await t.registerUser()
        const ip = '203.0.113.40'
        const { result, hashed } = await countingHashes(() =>
          Promise.all(Array.from({ length: 50 }, (_, i) => login(user.email, i === 39 ? user.password : 'wrong-password', ip))),
        )
        const statuses = result.map((r) => r.status)
        expect(statuses.filter((s) => s === 429)).toHaveLength(40)
        expect(statuses.filter((s) => s === 200).length + statuses.filter((s) => s === 400).length).toBe(10)
        expect(hashed).toBe(10)
        // Whichever ten were counted, the eleventh attempt from this address is refused.
        expect((await login(user.email, user.password, ip)).status).toBe(statuses[39] === 200 ? 200 : 429)
      })

      test('guesses spread over many addresses: past the account-wide limit, failing addresses stop, a clean one gets in', async () => {
        const owner = await t.registerUser()
        // 5 addresses x 10 wrong passwords = the account-wide limit of 50.
        for (let a = 0; a < 5; a++)
          for (let i = 0; i < 10; i++) expect((await login(owner.email, 'wrong-password', `192.0.2.${100 + a}`)).status).toBe(400)
        // An address with one failure for the account, well under its own limit of 10, is now stopped.
        expect((await login(owner.email, 'wrong-password', '192.0.2.200')).status).toBe(400)
        expect((await login(owner.email, owner.password, '192.0.2.200')).status).toBe(429)
        // A fresh address gets one guess in parallel however many it sends.
        const burst = await Promise.all(Array.from({ length: 10 }, () => login(owner.email, 'wrong-password', '192.0.2.201')))
        expect(burst.filter((r) => r.status === 400)).toHaveLength(1)
        // The owner, from an address that has not been failing, still gets in.
        expect((await login(owner.email, owner.password, '198.51.100.9')).status).toBe(200)
      })

      test('a mistyped password twice bothers no one, and success clears the count', async () => {
        const user = await t.registerUser()
        for (let round = 0; round < 4; round++) {
          for (let i = 0; i < 3; i++) expect((await login(user.email, 'typo-password')).status).toBe(400)
          expect((await login(user.email, user.password)).status).toBe(200)
        }
      })

      test('failed logins are limited per address across accounts, a parallel burst counted exactly', async () => {
        const ip = '198.51.100.77'
        const burst = await Promise.all(Array.from({ length: 130 }, (_, i) => login(`nobody${i}@example.com`, 'wrong-password', ip)))
        expect(burst.filter((r) => r.status === 400)).toHaveLength(100)
        expect(burst.filter((r) => r.status === 429)).toHaveLength(30)
        const limited = await login('someone-else@example.com', 'wrong-password', ip)
        expect(limited.status).toBe(429)
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
        expect((await login('someone-else@example.com', 'wrong-password', '198.51.100.78')).status).toBe(400)
      })

      test('wrong current passwords on update are limited per user, counted before the hash', async () => {
        const user = await t.registerUser()
        const update = (current: string, token = user.access) =>
          t.call('PATCH', '/api/users/update/', { token, body: { password: 'another-long-passphrase', current_password: current } })
        const { result: burst, hashed } = await countingHashes(() => Promise.all(Array.from({ length: 30 }, () => update('a-wrong-guess'))))
        expect(burst.filter((r) => r.status === 400)).toHaveLength(10)
        expect(burst.filter((r) => r.status === 429)).toHaveLength(20)
        expect(hashed).toBe(10)
        const limited = await update(user.password)
        expect(limited.status).toBe(429)
        expect(limited.body.code).toBe('throttled')
        expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
        afterWindow()
        const fresh = (await refresh(user.refresh)).body.access
        expect((await update(user.password, fresh)).status).toBe(200)
      })

      test('registrations are limited per address', async () => {
        const register = (i: number) =>
          t.call('POST', '/api/users/register/', {
            body: { email: `burst${i}-${crypto.randomUUID()}@example.com`, full_name: 'Burst', password: 'a-long-unusual-passphrase' },
            headers: { 'x-forwarded-for': '198.51.100.200' },
          })
        const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => register(i)))
        expect(burst.filter((r) => r.status === 200)).toHaveLength(20)
        expect(burst.filter((r) => r.status === 429)).toHaveLength(10)
        const limited = await register(31)
        expect(limited.status).toBe(429)
        expect(limited.headers.get('retry-after')).toBeTruthy()
      })
    })
  })
}

describe.each(REDIS_KINDS)('several instances on one %s', (store) => {
  let first: TestApp
  let second: TestApp
  beforeAll(async () => {
    first = await createTestApp({ label: 'instances', store })
    second = await createTestApp({ sameDeploymentAs: first })
  })
  afterAll(async () => {
    await second.close()
    await first.close()
  })

  test('a session ended on one instance is refused on the other at once', async () => {
    const user = await first.registerUser()
    expect((await second.call('GET', '/api/users/me/', { token: user.access })).status).toBe(200)
    expect((await second.call('POST', '/api/users/logout/', { token: user.access, body: { refresh: user.refresh } })).status).toBe(204)
    for (const instance of [first, second]) expect((await instance.call('GET', '/api/users/me/', { token: user.access })).status).toBe(401)
  })

  test('a refresh token rotated on one instance is reuse on the other after the grace period', async () => {
    const user = await first.registerUser()
    const rotated = await first.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
    first.clock.advance(11_000)
    expect((await second.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })).status).toBe(401)
    expect((await first.call('GET', '/api/users/me/', { token: rotated.body.access })).status).toBe(401)
  })
})
