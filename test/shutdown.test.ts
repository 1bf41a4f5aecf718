import { afterAll, expect, test } from 'bun:test'
import { createTestDatabase, TEST_SECRET } from './support/app'
import { freePort, spawnMain, waitForPort } from './support/process'
import { waitFor } from './support/wait'

const databases: { drop(): Promise<void> }[] = []
afterAll(() => Promise.all(databases.map((database) => database.drop())))

const credentials = { email: 'slow@example.com', password: 'a-long-unusual-passphrase' }
const json = (body: unknown, signal?: AbortSignal) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
  signal,
})

/** CPU time the process has used, in clock ticks (utime + stime of /proc/<pid>/stat). */
async function cpuTicks(pid: number) {
  const stat = await Bun.file(`/proc/${pid}/stat`).text()
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** Resolves once the idle service has burnt a tenth of a second of CPU: the costly hash of a login is running. */
async function hashing(pid: number) {
  const before = await cpuTicks(pid)
  await waitFor(async () => (await cpuTicks(pid)) - before >= 10, 'the login to start hashing', 10_000)
}

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
  await hashing(child.pid)
  child.kill('SIGTERM')
  const response = await inFlight
  expect(response.status).toBe(200)
  expect(((await response.json()) as { access: string }).access).toBeString()
  // Still running when the signal came: the hash alone takes far longer than the tenth of a second seen.
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
  await hashing(child.pid)
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
