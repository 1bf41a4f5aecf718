import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { users } from '../src/users/table'
import { createTestApp, type TestApp } from './support/app'
import { REDIS_KINDS } from './support/redis'
import { waitFor } from './support/wait'

// A long TTL, so that anything seen fresh before it ends came through an invalidation.
const env = { USER_CACHE_TTL_SECONDS: '60' }

const me = (app: TestApp, token: string) => app.call('GET', '/api/users/me/', { token })

// On a cluster the invalidations travel by sharded pub/sub; on one Redis by classic pub/sub.
describe.each(REDIS_KINDS)('the per-instance user cache on %s', (store) => {
  let first: TestApp
  let second: TestApp
  beforeAll(async () => {
    first = await createTestApp({ label: 'user_cache', env, store })
    second = await createTestApp({ sameDeploymentAs: first, env })
  })
  afterAll(async () => {
    await second.close()
    await first.close()
  })

  test('serves the guard from memory, so a change made behind its back shows only after the TTL', async () => {
    const user = await first.registerUser({ full_name: 'Cached Name' })
    await me(first, user.access)
    await first.deps.db.update(users).set({ fullName: 'Behind Its Back' }).where(eq(users.id, user.id))
    expect((await me(first, user.access)).body.full_name).toBe('Cached Name')
    first.clock.advance(60_001)
    expect((await me(first, user.access)).body.full_name).toBe('Behind Its Back')
  })

  test('never returns a changed user on the instance that changed it', async () => {
    const user = await first.registerUser({ full_name: 'Before' })
    await me(first, user.access)
    await first.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'After' } })
    expect((await me(first, user.access)).body.full_name).toBe('After')
  })

  test('forgets a change made on another instance within milliseconds, long before the TTL', async () => {
    const user = await first.registerUser({ full_name: 'Old Name' })
    expect((await me(second, user.access)).body.full_name).toBe('Old Name')
    await first.call('PATCH', '/api/users/update/', { token: user.access, body: { full_name: 'New Name' } })
    const started = performance.now()
    await waitFor(async () => (await me(second, user.access)).body.full_name === 'New Name', 'the change to show', 2_000)
    expect(performance.now() - started).toBeLessThan(1_000)
  })

  test('never serves a user deleted on another instance', async () => {
    const user = await first.registerUser()
    const viewer = await first.registerUser()
    expect((await second.call('GET', `/api/users/${user.id}/`, { token: viewer.access })).status).toBe(200)
    expect((await first.call('DELETE', `/api/users/${user.id}/`, { token: user.access })).status).toBe(204)
    // Read by someone else, so no session check stands in for the cache: a stale entry would answer 200 for 60 s.
    await waitFor(async () => (await second.call('GET', `/api/users/${user.id}/`, { token: viewer.access })).status === 404, 'the change to show', 2_000)
  })

  test('an admin flag revoked by the command is seen everywhere at once', async () => {
    const { setAdmin } = await import('../src/users/service')
    const admin = await first.registerUser()
    const other = await first.registerUser()
    await setAdmin(first.deps, admin.email, true)
    await waitFor(async () => (await second.call('GET', `/api/users/${other.id}/`, { token: admin.access })).body.email === other.email, 'the change to show', 2_000)
    await setAdmin(first.deps, admin.email, false)
    await waitFor(async () => (await second.call('GET', `/api/users/${other.id}/`, { token: admin.access })).body.email === undefined, 'the change to show', 2_000)
  })
})
