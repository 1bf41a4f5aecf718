import { afterAll, expect, test } from 'bun:test'
import { createTestDatabase, TEST_SECRET } from './support/app'
import { freePort, spawnMain, waitForPort } from './support/process'

const databases: { drop(): Promise<void> }[] = []
afterAll(() => Promise.all(databases.map((database) => database.drop())))

const credentials = { email: 'slow@example.com', password: 'a-long-unusual-passphrase' }
const json = (body: unknown, signal?: AbortSignal) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
  signal,
})

/** The service as a child process on a fresh database, where a costly hash makes login the slow request (about two seconds here). */
async function startSlowService(label: string) {
  const database = await createTestDatabase(label)
  databases.push(database)
  const port = freePort()
  const child = spawnMain(['serve'], {
    DATABASE_URL: database.url,
    SECRET_KEY: TEST_SECRET,
    PORT: String(port),
    ARGON2_MEMORY_KIB: String(256 * 1024),
    ARGON2_TIME_COST: '4',
    LOG_LEVEL: 'info',
  })
  await waitForPort(port)
  const base = `http://127.0.0.1:${port}/api/users`
  expect((await fetch(`${base}/register/`, json({ ...credentials, full_name: 'Slow' }))).status).toBe(200)
  return { child, base }
}

test('SIGTERM lets a slow in-flight request finish, refuses new connections, and exits 0', async () => {
  const { child, base } = await startSlowService('shutdown')

  const started = performance.now()
  const inFlight = fetch(`${base}/login/`, json(credentials))
  await Bun.sleep(150)
  child.kill('SIGTERM')
  const response = await inFlight
  expect(response.status).toBe(200)
  expect(((await response.json()) as { access: string }).access).toBeString()
  // Still running when the signal came: the hash alone outlasts the 150 ms wait.
  expect(performance.now() - started).toBeGreaterThan(300)

  expect(await child.exited).toBe(0)
  await expect(fetch(`${base}/me/`)).rejects.toThrow()
  const logged = await new Response(child.stdout).text()
  expect(logged).toContain('"msg":"shutting down"')
  expect(logged).toContain('"msg":"stopped"')
}, 60_000)

test('SIGTERM waits for the handler of a client that already left before closing the pools', async () => {
  const { child, base } = await startSlowService('shutdown_abandoned')

  // The client gives up while its login is hashing; then the service is told to stop.
  const abandoned = new AbortController()
  const login = fetch(`${base}/login/`, json(credentials, abandoned.signal)).catch(() => undefined)
  await Bun.sleep(150)
  abandoned.abort()
  await login
  child.kill('SIGTERM')
  expect(await child.exited).toBe(0)

  const lines = (await new Response(child.stdout).text()).trim().split('\n').map((line) => JSON.parse(line) as { msg: string; route?: string; status?: number })
  const loginLine = lines.findIndex((line) => line.msg === 'request' && line.route === '/api/users/login')
  expect(lines[loginLine]?.status).toBe(200)
  expect(loginLine).toBeLessThan(lines.findIndex((line) => line.msg === 'stopped'))
  expect(lines.some((line) => line.msg === 'unhandled error')).toBe(false)
}, 60_000)
