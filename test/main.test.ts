import { afterAll, describe, expect, test } from 'bun:test'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { openPostgres } from '../src/db'
import { createTestDatabase, TEST_SECRET } from './support/app'
import { freePort, spawnMain, waitForPort } from './support/process'

const dataDir = mkdtempSync(join(tmpdir(), 'users-embedded-'))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const post = (port: number, path: string, body: unknown) =>
  fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('the embedded default', () => {
  test('starts with nothing configured, and keeps its data and generated secret across a restart', async () => {
    const port = freePort()
    const first = spawnMain(['serve'], { DATA_DIR: dataDir, PORT: String(port) })
    await waitForPort(port)
    const secretFile = join(dataDir, 'secret_key')
    expect(existsSync(secretFile)).toBe(true)
    const secret = readFileSync(secretFile, 'utf8')
    const registered = await post(port, '/api/users/register/', { email: 'first@example.com', full_name: 'First', password: 'a-long-unusual-passphrase' })
    expect(registered.status).toBe(200)
    first.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    const log = await new Response(first.stdout).text()
    expect(log).toContain('SECRET_KEY is not set')
    expect(log.match(/no broker configured/g)).toHaveLength(1)

    const second = spawnMain(['serve'], { DATA_DIR: dataDir, PORT: String(port) })
    await waitForPort(port)
    // Sessions are in process on the embedded default, so a restart ends them; the account remains.
    const login = await post(port, '/api/users/login/', { email: 'first@example.com', password: 'a-long-unusual-passphrase' })
    expect(login.status).toBe(200)
    const { access } = (await login.json()) as { access: string }
    const me = await fetch(`http://127.0.0.1:${port}/api/users/me/`, { headers: { authorization: `JWT ${access}` } })
    expect(me.status).toBe(200)
    expect(((await me.json()) as { email: string }).email).toBe('first@example.com')
    expect(readFileSync(secretFile, 'utf8')).toBe(secret)
    second.kill('SIGTERM')
    expect(await second.exited).toBe(0)
    // PGlite's first start runs initdb: slow on a busy machine.
  }, 150_000)
})

describe('start-up checks', () => {
  test('a malformed setting stops start-up with one line naming the variable', async () => {
    const child = spawnMain(['serve'], { PORT: 'eighty' })
    expect(await child.exited).toBe(1)
    expect((await new Response(child.stderr).text()).trim()).toBe('configuration error: PORT: expected a port number')
  })

  test('a configured database needs SECRET_KEY', async () => {
    const child = spawnMain(['serve'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres' })
    expect(await child.exited).toBe(1)
    expect((await new Response(child.stderr).text()).trim()).toBe('configuration error: SECRET_KEY: required when a database is configured')
  })
})

describe('on a real Postgres', () => {
  test('several instances migrating at once all succeed and apply each migration once', async () => {
    const database = await createTestDatabase('migrate')
    try {
      const handles = await Promise.all([1, 2, 3].map(() => openPostgres(database.url, { max: 1 })))
      const applied = await handles[0]!.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`)
      const journal = await Bun.file(join(import.meta.dir, '../drizzle/meta/_journal.json')).json()
      expect((applied as unknown as { n: number }[])[0]!.n).toBe(journal.entries.length)
      await Promise.all(handles.map((handle) => handle.close()))
    } finally {
      await database.drop()
    }
  })

  test('serves with the broker unreachable, says so on /health/ready, and stops cleanly on SIGTERM', async () => {
    const database = await createTestDatabase('broker_down')
    try {
      const port = freePort()
      const child = spawnMain(['serve'], {
        DATABASE_URL: database.url,
        SECRET_KEY: TEST_SECRET,
        PORT: String(port),
        AMQP_URL: `amqp://guest:guest@127.0.0.1:${freePort()}`,
        QUEUE_LIST: 'posts',
        LOG_LEVEL: 'silent',
      })
      await waitForPort(port)
      const registered = await post(port, '/api/users/register/', { email: 'early@example.com', full_name: 'Early', password: 'a-long-unusual-passphrase' })
      expect(registered.status).toBe(200)
      const ready = await fetch(`http://127.0.0.1:${port}/health/ready`)
      expect(ready.status).toBe(503)
      expect(((await ready.json()) as { checks: Record<string, { status: string }> }).checks.broker!.status).toBe('down')

      const stoppedAt = performance.now()
      child.kill('SIGTERM')
      expect(await child.exited).toBe(0)
      expect(performance.now() - stoppedAt).toBeLessThan(5_000)
    } finally {
      await database.drop()
    }
  }, 30_000)

  test('admin:grant and admin:revoke change the admin flag by email', async () => {
    const database = await createTestDatabase('admin')
    try {
      const env = { DATABASE_URL: database.url, SECRET_KEY: TEST_SECRET }
      const migrate = spawnMain(['migrate'], env)
      expect(await migrate.exited).toBe(0)
      const handle = await openPostgres(database.url, { max: 1 })
      await handle.db.execute(
        sql`insert into users (id, email, full_name, password_hash, created_at, updated_at) values (gen_random_uuid(), 'boss@example.com', 'Boss', 'x', now(), now())`,
      )
      const isAdmin = async () =>
        ((await handle.db.execute(sql`select is_admin from users where email = 'boss@example.com'`)) as unknown as { is_admin: boolean }[])[0]!.is_admin

      expect(await spawnMain(['admin', 'grant', 'Boss@Example.com'], env).exited).toBe(0)
      expect(await isAdmin()).toBe(true)
      expect(await spawnMain(['admin', 'revoke', 'boss@example.com'], env).exited).toBe(0)
      expect(await isAdmin()).toBe(false)
      const unknown = spawnMain(['admin', 'grant', 'nobody@example.com'], env)
      expect(await unknown.exited).toBe(1)
      expect(await new Response(unknown.stderr).text()).toContain('no user with the email nobody@example.com')
      await handle.close()
    } finally {
      await database.drop()
    }
  }, 30_000)
})
