import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { count, eq, inArray, sql } from 'drizzle-orm'
import postgres from 'postgres'
import sharp from 'sharp'
import { queryRows } from '../src/db'
import { outboxEvents } from '../src/events/table'
import { createLogger } from '../src/logger'
import { importDjangoUsers, type ImportOptions, type ImportSummary } from '../src/migration/django-import'
import { importPicture } from '../src/migration/django-pictures'
import { createProgress } from '../src/migration/import-report'
import { pictureLimits } from '../src/users/picture'
import { users } from '../src/users/table'
import { createTestApp, createTestDatabase, type TestApp } from './support/app'
import { createOldDatabase, oldRow } from './support/django'
import { jpegThenScript, png, pngBomb } from './support/images'
import { spawnMain } from './support/process'

type Fixtures = { cases: { hasher: string; password: string; encoded: string }[] }
const fixtures: Fixtures = await Bun.file(new URL('./fixtures/django-password-hashes.json', import.meta.url)).json()

const ann = oldRow({
  email: 'Ann.Smith@Example.COM',
  full_name: 'Ann Smith',
  password: fixtures.cases[0]!.encoded,
  profile_pic: 'profile_pics/ann.png',
  last_login: '2024-05-06T07:08:09.654321+00:00',
})
// Django's unique email is case-sensitive: both exist. The one that logged in last is kept.
const bob = oldRow({ email: 'Bob@example.com', full_name: 'Bob Recent', last_login: '2024-03-01T00:00:00+00:00' })
const bobTwin = oldRow({ email: 'bob@example.com', full_name: 'Bob Old', last_login: '2024-01-01T00:00:00+00:00' })
const carol = oldRow({ email: 'carol@example.com', full_name: 'Carol Gone', is_active: false, password: fixtures.cases[1]!.encoded })
const root = oldRow({ email: 'root@example.com', full_name: 'Root', is_superuser: true })
const staff = oldRow({ email: 'staff@example.com', full_name: 'Staff', is_staff: true })
const dave = oldRow({ email: 'dave@example.com', profile_pic: 'profile_pics/missing.png' })
const eve = oldRow({ email: 'eve@example.com', profile_pic: '../../etc/passwd' })
const gina = oldRow({ email: 'gina@example.com', profile_pic: 'profile_pics/notes.txt' })
// Files the old service stored without looking: a decompression bomb, and a JPEG header before a script.
const hank = oldRow({ email: 'hank@example.com', profile_pic: 'profile_pics/bomb.png' })
const iris = oldRow({ email: 'iris@example.com', profile_pic: 'profile_pics/script.jpg' })
const frank = oldRow({ email: 'frank@example.com', full_name: '' })
const invalid = oldRow({ email: 'not-an-email' })
// Someone registered on this service with this address before the import.
const taken = oldRow({ email: 'Taken@example.com' })
const fixtureUsers = fixtures.cases.map((fixture, i) => ({
  fixture,
  row: oldRow({ email: `fixture-${i}@example.com`, full_name: `Fixture ${fixture.hasher}`, password: fixture.encoded }),
}))
const oldRows = [ann, bob, bobTwin, carol, root, staff, dave, eve, gina, hank, iris, frank, invalid, taken, ...fixtureUsers.map((u) => u.row)]
// Everyone but the collision's loser and the invalid email; `taken` too where nobody took the address yet.
const importable = oldRows.length - 2

let oldDb: Awaited<ReturnType<typeof createOldDatabase>>
let mediaDir: string

beforeAll(async () => {
  oldDb = await createOldDatabase(oldRows)
  mediaDir = mkdtempSync(join(tmpdir(), 'django-media-'))
  mkdirSync(join(mediaDir, 'profile_pics'))
  writeFileSync(join(mediaDir, 'profile_pics/ann.png'), png(0, 128, 255))
  writeFileSync(join(mediaDir, 'profile_pics/notes.txt'), 'not a picture')
  writeFileSync(join(mediaDir, 'profile_pics/bomb.png'), pngBomb())
  writeFileSync(join(mediaDir, 'profile_pics/script.jpg'), jpegThenScript())
})

afterAll(async () => {
  await oldDb.drop()
  rmSync(mediaDir, { recursive: true, force: true })
})

const silent = createLogger('silent', false)
const runImport = (app: TestApp, options: Partial<ImportOptions> = {}) =>
  importDjangoUsers(
    { db: app.deps.db, files: app.deps.files, clock: app.clock, logger: silent, pictureLimits: pictureLimits(app.deps.config) },
    { from: oldDb.url, mediaDir, ...options },
  )

const userRow = async (app: TestApp, id: string) => (await app.deps.db.select().from(users).where(eq(users.id, id)))[0]
const skippedIds = (summary: ImportSummary, reason: string) => summary.skipped.filter((s) => s.reason === reason).map((s) => s.id)
const login = (app: TestApp, email: string, password: string) => app.call('POST', '/api/users/login/', { body: { email, password } })
const filesIn = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).length

describe('importing into a service that already has a user', () => {
  let t: TestApp
  let first: ImportSummary

  beforeAll(async () => {
    t = await createTestApp({ label: 'django_import', store: 'memory' })
    await t.registerUser({ email: 'taken@example.com' })
    first = await runImport(t)
  })
  afterAll(() => t.close())

  test('imports every user it can and reports the others', () => {
    expect(first).toMatchObject({ dryRun: false, read: oldRows.length, imported: importable - 1, updated: 0, unchanged: 0, events: 0 })
    expect(first.skipped.map((s) => s.reason).sort()).toEqual(['email_collision', 'email_taken', 'invalid_email'])
  })

  test('keeps ids, names, password hashes and timestamps to the microsecond, and lower-cases emails', async () => {
    const row = await userRow(t, ann.id)
    expect(row).toMatchObject({ id: ann.id, email: 'ann.smith@example.com', fullName: 'Ann Smith', passwordHash: ann.password, isAdmin: false, isActive: true })
    const [same] = await queryRows<{ last_login: boolean; created_at: boolean }>(
      t.deps.db,
      sql`select last_login = ${ann.last_login}::timestamptz as last_login, created_at = ${ann.date_joined}::timestamptz as created_at
        from users where id = ${ann.id}`,
    )
    expect(same).toEqual({ last_login: true, created_at: true })
  })

  test('makes admins of superusers and staff, and of no one else', async () => {
    const admins = await t.deps.db.select({ id: users.id }).from(users).where(eq(users.isAdmin, true))
    expect(admins.map((a) => a.id).sort()).toEqual([root.id, staff.id].sort())
  })

  test('keeps an empty name as it was', async () => {
    expect((await userRow(t, frank.id))?.fullName).toBe('')
  })

  test('reports emails equal but for case, and imports only the account that logged in last', async () => {
    expect(skippedIds(first, 'email_collision')).toEqual([bobTwin.id])
    expect(first.skipped.find((s) => s.id === bobTwin.id)?.detail).toContain(bob.id)
    expect((await userRow(t, bob.id))?.email).toBe('bob@example.com')
    expect(await userRow(t, bobTwin.id)).toBeUndefined()
  })

  test('reports an invalid email and an email a user of this service has, and imports neither', async () => {
    expect(skippedIds(first, 'invalid_email')).toEqual([invalid.id])
    expect(skippedIds(first, 'email_taken')).toEqual([taken.id])
    expect(await userRow(t, invalid.id)).toBeUndefined()
    expect(await userRow(t, taken.id)).toBeUndefined()
  })

  test('imports an inactive user who then cannot log in, and whose tokens are refused', async () => {
    expect((await userRow(t, carol.id))?.isActive).toBe(false)
    const refused = await login(t, carol.email, fixtures.cases[1]!.password)
    expect(refused.status).toBe(400)
    expect(refused.body).toEqual((await login(t, carol.email, 'not-the-password')).body)

    // A session from before the account was deactivated.
    const sid = crypto.randomUUID()
    const { pair, refreshJti } = await t.deps.tokens.issuePair(carol.id, sid)
    await t.deps.sessions.create({ sid, userId: carol.id, refreshJti, ttlSeconds: 3600, ip: null, userAgent: null, now: t.clock.now() })
    const me = await t.call('GET', '/api/users/me/', { token: pair.access })
    expect(me.status).toBe(401)
    expect(me.body.code).toBe('user_inactive')
    const refreshed = await t.call('POST', '/api/users/refresh/', { body: { refresh: pair.refresh } })
    expect(refreshed.status).toBe(401)
    expect(refreshed.body.code).toBe('user_inactive')
  })

  test('copies pictures from --media into storage, re-encoded as uploads are, and reports the ones it cannot copy', async () => {
    const key = (await userRow(t, ann.id))?.profilePic
    expect((await userRow(t, ann.id))?.emailVerified).toBe(true)
    expect(key).toMatch(new RegExp(`^profile-pics/${ann.id}/[0-9a-f]{32}\\.webp$`))
    const stored = sharp(await Bun.file(join(t.mediaDir, key!)).bytes())
    expect(await stored.metadata()).toMatchObject({ format: 'webp', width: 1, height: 1 })
    expect([...(await stored.raw().toBuffer())].map((value) => Math.round(value / 16))).toEqual([0, 8, 16])
    const profile = await t.call('GET', `/api/users/${ann.id}/`, { token: (await t.registerUser()).access })
    expect(profile.body.profile_pic).toBe(`http://users.test/api/users/media/${key}`)

    expect(first.pictures).toMatchObject({ copied: 1, linked: 0 })
    expect(first.pictures.problems.sort((a, b) => a.problem.localeCompare(b.problem))).toEqual([
      { id: dave.id, path: dave.profile_pic!, problem: 'missing_file' },
      { id: gina.id, path: gina.profile_pic!, problem: 'not_an_image' },
      { id: hank.id, path: hank.profile_pic!, problem: 'too_large' },
      { id: iris.id, path: iris.profile_pic!, problem: 'undecodable' },
      { id: eve.id, path: eve.profile_pic!, problem: 'unsafe_path' },
    ])
    // Their users are imported all the same, without a picture.
    for (const user of [dave, eve, gina, hank, iris]) expect((await userRow(t, user.id))?.profilePic).toBeNull()
  })

  test('emits no events by default', async () => {
    const imported = inArray(outboxEvents.userId, oldRows.map((row) => row.id))
    expect((await t.deps.db.select({ n: count() }).from(outboxEvents).where(imported))[0]?.n).toBe(0)
  })

  test('a re-run changes nothing and copies no file again', async () => {
    const files = filesIn(t.mediaDir)
    const again = await runImport(t)
    expect(again).toMatchObject({ imported: 0, updated: 0, unchanged: first.imported, pictures: { copied: 0 } })
    expect(again.skipped).toEqual(first.skipped)
    expect(filesIn(t.mediaDir)).toBe(files)
  })

  test('a re-run brings over what changed in the old database since', async () => {
    await oldDb.sql`update userauth_baseuser set full_name = 'Root Renamed', is_superuser = false where id = ${root.id}`
    const again = await runImport(t)
    expect(again).toMatchObject({ imported: 0, updated: 1, unchanged: first.imported - 1 })
    expect(await userRow(t, root.id)).toMatchObject({ fullName: 'Root Renamed', isAdmin: false })
  })

  test('a re-run leaves alone a user who has logged in here since', async () => {
    const { row, fixture } = fixtureUsers[0]!
    expect((await login(t, row.email, fixture.password)).status).toBe(200)
    const upgraded = (await userRow(t, row.id))?.passwordHash
    await oldDb.sql`update userauth_baseuser set full_name = 'Changed Over There' where id = ${row.id}`
    const again = await runImport(t)
    expect(skippedIds(again, 'signed_in_here')).toEqual([row.id])
    expect(await userRow(t, row.id)).toMatchObject({ fullName: row.full_name, passwordHash: upgraded })
  })

  test('imported users log in with their old passwords, whatever the hasher', async () => {
    const oneOfEach = new Map(fixtureUsers.slice(1).map((user) => [user.fixture.hasher, user]))
    const statuses = await Promise.all(
      [...oneOfEach.values()].map(async ({ row, fixture }) => [fixture.hasher, (await login(t, row.email, fixture.password)).status]),
    )
    expect(statuses).toEqual([...oneOfEach.keys()].map((hasher) => [hasher, 200]))
  }, 30_000)
})

describe('a dry run, then the import with events', () => {
  let t: TestApp
  let dry: ImportSummary

  beforeAll(async () => {
    t = await createTestApp({ label: 'django_import_events', store: 'memory' })
  })
  afterAll(() => t.close())

  test('a dry run reports what the import would do and writes nothing', async () => {
    dry = await runImport(t, { dryRun: true, emitEvents: true })
    expect(dry).toMatchObject({ dryRun: true, imported: importable, updated: 0, events: importable, pictures: { copied: 1 } })
    expect((await t.deps.db.select({ n: count() }).from(users))[0]?.n).toBe(0)
    expect((await t.deps.db.select({ n: count() }).from(outboxEvents))[0]?.n).toBe(0)
    expect(filesIn(t.mediaDir)).toBe(0)
  })

  test('with --emit-events, the import does what the dry run said and stores user.created for each new user', async () => {
    const real = await runImport(t, { emitEvents: true })
    expect({ ...real, dryRun: true }).toEqual(dry)
    const events = await t.deps.db.select().from(outboxEvents)
    expect(events).toHaveLength(importable)
    expect(new Set(events.map((event) => event.name))).toEqual(new Set(['user.created']))
    const key = (await userRow(t, ann.id))?.profilePic
    expect(events.find((event) => event.userId === ann.id)?.payload).toEqual({
      id: ann.id,
      email: 'ann.smith@example.com',
      // The old service's users count as verified (docs/recovery.md).
      email_verified: true,
      full_name: 'Ann Smith',
      profile_pic: `http://users.test/api/users/media/${key}`,
    })
  })
})

describe('pictures without --media', () => {
  const limits = { maxPixels: 50_000_000, maxSide: 1024 }
  test('link to the old MEDIA_URL when it is given, as Django quoted the path', async () => {
    const picture = await importPicture({ mediaUrl: 'https://old.example.com/media' }, limits, ann.id, 'profile_pics/Ann Smith (1).jpg')
    expect(picture).toEqual({ value: 'https://old.example.com/media/profile_pics/Ann%20Smith%20(1).jpg' })
  })

  test('are not kept without it, which is reported', async () => {
    expect(await importPicture({}, limits, ann.id, 'profile_pics/ann.png')).toEqual({ value: null, problem: 'not_kept' })
    expect(await importPicture({}, limits, ann.id, '')).toEqual({ value: null })
  })

  test('fall back to the old MEDIA_URL when the file cannot be copied', async () => {
    const picture = await importPicture({ mediaDir, mediaUrl: 'https://old.example.com/media/' }, limits, dave.id, dave.profile_pic)
    expect(picture).toEqual({ value: 'https://old.example.com/media/profile_pics/missing.png', problem: 'missing_file' })
  })
})

describe('progress', () => {
  test('is a bar on a terminal', () => {
    let text = ''
    let now = 0
    const progress = createProgress({ isTTY: true, write: (chunk: string) => (text += chunk) }, silent, () => now)
    now = 2_000
    progress.update(5_000, 10_000)
    progress.finish()
    expect(text).toBe(`\r[${'#'.repeat(15)}${'-'.repeat(15)}]  50% 5,000/10,000 users  2,500/s  2 s left\x1b[K\n`)
  })

  test('is a log line every few seconds elsewhere', () => {
    const lines: unknown[] = []
    let now = 0
    const progress = createProgress({ isTTY: false, write: () => {} }, { info: (fields: unknown) => void lines.push(fields) }, () => now)
    now = 1_000
    progress.update(1_000, 3_000)
    now = 6_000
    progress.update(2_000, 3_000)
    progress.update(3_000, 3_000)
    expect(lines).toEqual([
      { done: 2_000, total: 3_000, rowsPerSecond: 333 },
      { done: 3_000, total: 3_000, rowsPerSecond: 500 },
    ])
  })
})

describe('the import-django command', () => {
  test('imports into the configured database and prints the summary', async () => {
    const target = await createTestDatabase('django_import_cli')
    try {
      const child = spawnMain(['import-django', '--from', oldDb.url, '--media-url', 'https://old.example.com/media/'], { DATABASE_URL: target.url })
      const [status, stdout, stderr] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()])
      expect({ status, stderr }).toEqual({ status: 0, stderr: '' })
      expect(stdout).toContain('Django import done.')
      expect(stdout).toMatch(new RegExp(`imported\\s+${importable}\\n`))
      expect(stdout).toContain(`${bobTwin.id} bob@example.com: email_collision`)
      const ours = postgres(target.url, { max: 1, onnotice: () => {} })
      const [row] = await ours<{ profile_pic: string }[]>`select profile_pic from users where id = ${ann.id}`
      await ours.end()
      expect(row?.profile_pic).toBe('https://old.example.com/media/profile_pics/ann.png')
    } finally {
      await target.drop()
    }
  }, 30_000)

  test('refuses to run without --from', async () => {
    const child = spawnMain(['import-django', '--dry-run'], {})
    expect(await child.exited).toBe(1)
    expect(await new Response(child.stderr).text()).toStartWith("--from: expected the old database's postgres:// URL")
  })
})
