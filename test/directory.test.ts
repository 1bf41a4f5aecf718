import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { directoryOrder, listUsers, searchCondition } from '../src/users/directory'
import { setAdmin } from '../src/users/service'
import { users } from '../src/users/table'
import { createTestApp, type TestApp } from './support/app'

let t: TestApp
let viewer: Awaited<ReturnType<TestApp['registerUser']>>
let admin: Awaited<ReturnType<TestApp['registerUser']>>
const people: Record<string, string> = {}

beforeAll(async () => {
  t = await createTestApp({ label: 'directory', store: 'memory' })
  viewer = await t.registerUser({ full_name: 'Viewer Person' })
  admin = await t.registerUser({ full_name: 'Admin Person' })
  await setAdmin(t.deps, admin.email, true)
  for (const name of ['Ann Smith', 'anna Karenina', 'Joanne Annable', 'Bob Annsworth', 'Zoë Ångström', 'Ann Smith']) {
    const user = await t.registerUser({ full_name: name })
    people[`${name}#${user.id}`] = user.id
  }
})
afterAll(() => t.close())

const list = (query: string, token = viewer.access) => t.call('GET', `/api/users/${query}`, { token })

describe('GET /api/users/?ids=', () => {
  test("returns those users' public profiles in one page, without emails", async () => {
    const ids = Object.values(people).slice(0, 3)
    const response = await list(`?ids=${ids.join(',')}`)
    expect(response.status).toBe(200)
    expect(response.body.count).toBe(3)
    expect(response.body.next).toBeNull()
    expect(response.body.previous).toBeNull()
    expect(response.body.results.map((user: { id: string }) => user.id).sort()).toEqual([...ids].sort())
    for (const user of response.body.results) expect(Object.keys(user).sort()).toEqual(['full_name', 'id', 'profile_pic'])
  })

  test('shows emails to an admin', async () => {
    const response = await list(`?ids=${viewer.id}`, admin.access)
    expect(response.body.results).toEqual([{ id: viewer.id, email: viewer.email, email_verified: false, full_name: 'Viewer Person', profile_pic: null }])
  })

  test('skips unknown ids and returns more than a default page when asked', async () => {
    const ids = [...Object.values(people), crypto.randomUUID(), viewer.id, admin.id]
    const response = await list(`?ids=${ids.join(',')}`)
    expect(response.body.count).toBe(8)
    expect(response.body.results).toHaveLength(8)
  })

  test('refuses more than 100 ids and malformed ids with a 400 naming the field', async () => {
    const tooMany = await list(`?ids=${Array.from({ length: 101 }, () => crypto.randomUUID()).join(',')}`)
    expect(tooMany.status).toBe(400)
    expect(tooMany.body).toEqual({ ids: ['Ensure this field has no more than 100 ids.'] })
    const malformed = await list(`?ids=${viewer.id},not-a-uuid`)
    expect(malformed.status).toBe(400)
    expect(malformed.body).toEqual({ ids: ['“not-a-uuid” is not a valid UUID.'] })
  })

  test('needs an access token', async () => {
    expect((await t.call('GET', `/api/users/?ids=${viewer.id}`)).status).toBe(401)
  })
})

describe('GET /api/users/?search=', () => {
  const names = async (query: string) => (await list(query)).body.results.map((user: { full_name: string }) => user.full_name)

  test('matches the start of any word of the name, case-insensitively, ordered by name then id', async () => {
    expect(await names('?search=ANN')).toEqual(['Ann Smith', 'Ann Smith', 'anna Karenina', 'Bob Annsworth', 'Joanne Annable'])
    const twins = (await list('?search=ann smith')).body.results.map((user: { id: string }) => user.id)
    expect(twins).toEqual([...twins].sort())
    expect(await names('?search=karen')).toEqual(['anna Karenina'])
    expect(await names('?search=oanne')).toEqual([])
    expect(await names('?search=ångs')).toEqual(['Zoë Ångström'])
  })

  test('ignores punctuation that would be query syntax, and a search of no word matches no one', async () => {
    expect(await names(`?search=${encodeURIComponent("smi:* | ' !")}`)).toEqual(['Ann Smith', 'Ann Smith'])
    expect((await list(`?search=${encodeURIComponent('&|!')}`)).body).toEqual({ count: 0, next: null, previous: null, results: [] })
  })

  test('pages with absolute next and previous links, and a page past the end is a 404', async () => {
    const first = await list('?search=ann&page_size=2')
    expect(first.body.count).toBe(5)
    expect(first.body.results).toHaveLength(2)
    expect(first.body.previous).toBeNull()
    expect(first.body.next).toBe('http://users.test/api/users/?search=ann&page_size=2&page=2')

    const last = await list('?search=ann&page_size=2&page=3')
    expect(last.body.results.map((user: { full_name: string }) => user.full_name)).toEqual(['Joanne Annable'])
    expect(last.body.next).toBeNull()
    expect(last.body.previous).toBe('http://users.test/api/users/?search=ann&page_size=2&page=2')

    const past = await list('?search=ann&page_size=2&page=4')
    expect(past.status).toBe(404)
    expect(past.body).toEqual({ detail: 'Invalid page.', code: 'not_found' })
  })

  test('an empty result is an empty first page, not a 404', async () => {
    expect((await list('?search=nobodyhasthisname')).body).toEqual({ count: 0, next: null, previous: null, results: [] })
  })

  test('counts a broad search only up to the cap, and pages up to it', async () => {
    const first = await listUsers(t.deps.db, { search: 'ann', page_size: 2 }, 3)
    expect(first.count).toBe(3)
    expect(first.hasNext).toBe(true)
    const second = await listUsers(t.deps.db, { search: 'ann', page_size: 2, page: 2 }, 3)
    expect(second.rows).toHaveLength(2)
    expect(second.hasNext).toBe(false)
    await expect(listUsers(t.deps.db, { search: 'ann', page_size: 2, page: 3 }, 3)).rejects.toThrow('Invalid page.')
  })

  test('lists 10 a page by default, and refuses a page size over 100 or a page below 1', async () => {
    expect((await list('?')).body.results).toHaveLength(8)
    expect((await list('?page_size=101')).status).toBe(400)
    expect((await list('?page_size=101')).body).toEqual({ page_size: ['A whole number from 1 to 100 is required.'] })
    expect((await list('?page=0')).body).toEqual({ page: ['A valid page number is required.'] })
  })
})

describe('the search index', () => {
  test('with a few thousand users the search plan uses the name index', async () => {
    await t.deps.db.execute(sql`
      insert into users (id, email, full_name, password_hash, created_at, updated_at)
      select gen_random_uuid(), 'seed' || n || '@example.com',
             (array['Ann','Bob','Cleo','Dmitri','Eve','Farah'])[1 + n % 6] || ' ' || md5(n::text), 'x', now(), now()
      from generate_series(1, 5000) as n`)
    await t.deps.db.execute(sql`analyze users`)
    const query = t.deps.db.select().from(users).where(searchCondition('zoë')).orderBy(...directoryOrder).limit(10).toSQL()
    const plan = await t.deps.db.execute(sql.raw(`explain ${inline(query.sql, query.params)}`))
    const text = (plan as unknown as { 'QUERY PLAN': string }[]).map((row) => row['QUERY PLAN']).join('\n')
    expect(text).toContain('users_full_name_search')
  })
})

// EXPLAIN takes no bind parameters here; the test's own parameters are plain strings and numbers.
const inline = (query: string, params: unknown[]) =>
  query.replace(/\$(\d+)/g, (_, i) => {
    const value = params[Number(i) - 1]
    return typeof value === 'number' ? String(value) : `'${String(value).replaceAll("'", "''")}'`
  })
