// `bun bench/costs.ts`: the Redis commands and Postgres queries ONE request of each route makes, counted
// on the wire: a redis-server of this script's own watched with MONITOR (so nobody else's commands count),
// and Postgres behind a counting proxy (each Execute message is a statement, each Sync a round trip).
// docs/scaling.md builds the capacity model on its table.
import { createServer, connect, type Socket } from 'node:net'
import { createApp } from '../src/app'
import { manualClock } from '../src/clock'
import { openPostgres } from '../src/db'
import { buildDeps } from '../src/deps'
import { createLogger } from '../src/logger'
import { connectRedis } from '../src/redis/client'
import { createTestDatabase, testConfig } from '../test/support/app'
import { freePort } from '../test/support/process'

const redisPort = freePort()
const redisServer = Bun.spawn(['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdout: 'ignore', stderr: 'ignore' })
for (let i = 0; i < 100 && !(await Bun.connect({ hostname: '127.0.0.1', port: redisPort, socket: { data() {} } }).then((s) => (s.end(), true), () => false)); i++) await Bun.sleep(50)

const quiet = { info() {}, warn() {} }
const redisUrl = `redis://127.0.0.1:${redisPort}`
const monitor = await connectRedis(redisUrl, quiet)
const redis = { roundTrips: 0, commands: 0 }
// A MONITOR line: `<time> [0 127.0.0.1:port] "EXISTS" "key"`, or `[0 lua]` for a command run inside a script.
await monitor.monitor((line: string) => {
  redis.commands++
  if (!line.includes('[0 lua]')) redis.roundTrips++
})

// Postgres frontend messages: a type byte and a length, after one untyped start-up message per connection.
const pg = { statements: 0, roundTrips: 0 }
const proxy = createServer((client: Socket) => {
  const server = connect(5432, '127.0.0.1')
  let pending = Buffer.alloc(0)
  let started = false
  client.on('data', (chunk: Buffer) => {
    server.write(chunk)
    pending = Buffer.concat([pending, chunk])
    for (;;) {
      if (!started) {
        if (pending.length < 8) break
        const length = pending.readInt32BE(0)
        if (pending.length < length) break
        started = pending.readInt32BE(4) !== 80877103 // an SSLRequest comes before the real start-up message
        pending = pending.subarray(length)
        continue
      }
      if (pending.length < 5) break
      const length = pending.readInt32BE(1)
      if (pending.length < length + 1) break
      const type = String.fromCharCode(pending[0]!)
      if (type === 'E' || type === 'Q') pg.statements++
      if (process.env.COSTS_DEBUG && type === 'P') console.error('  P', pending.subarray(5, length + 1).toString().split('\0')[1]?.slice(0, 100))
      if (type === 'S' || type === 'Q') pg.roundTrips++
      pending = pending.subarray(length + 1)
    }
  })
  server.on('data', (chunk) => client.write(chunk))
  const close = () => (client.destroy(), server.destroy())
  client.on('error', close).on('close', close)
  server.on('error', close).on('close', close)
})
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
const proxyPort = (proxy.address() as { port: number }).port

const testDb = await createTestDatabase('costs')
const url = new URL(testDb.url)
url.port = String(proxyPort)
const database = await openPostgres(url.toString(), { max: 4 })
const client = await connectRedis(redisUrl, quiet)
const clock = manualClock()
// No broker and a sweep far away: the relays stay idle, so every statement counted is a request's.
const config = { ...testConfig({ OUTBOX_SWEEP_INTERVAL: '1d', DATA_DIR: `/tmp/users-costs-${process.pid}` }), redisKeyPrefix: 'costs:' }
const deps = await buildDeps(config, { database, redis: client }, createLogger('silent', false), clock)
const app = createApp(deps)

async function call(method: string, path: string, options: { body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = { 'x-forwarded-for': '203.0.113.9' }
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const response = await app.handle(new Request(`http://localhost${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) }))
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : undefined }
}

let rows: string[] = []
/**
 * Counts what one request costs until its response, and separately what follows it (the outbox and mail
 * relays, woken by its commit), once the wire has been quiet for a moment.
 */
async function measure(route: string, request: () => Promise<{ status: number }>, note = '') {
  await Bun.sleep(300)
  Object.assign(redis, { roundTrips: 0, commands: 0 })
  Object.assign(pg, { statements: 0, roundTrips: 0 })
  const { status } = await request()
  const during = { statements: pg.statements, roundTrips: pg.roundTrips }
  // MONITOR reports a command a moment after it ran, so Redis is read after the pause (nothing else sends any).
  await Bun.sleep(300)
  const after = pg.statements - during.statements
  rows.push(`| ${route} | ${status} | ${redis.roundTrips} | ${redis.commands} | ${during.statements} | ${during.roundTrips} | ${after} | ${note} |`)
}

let registered = 0
const register = () => call('POST', '/api/users/register/', { body: { email: `cost${registered}@example.com`, full_name: `Cost User ${registered++}`, password: 'a-long-unusual-passphrase' } })
for (let n = 0; n < 25; n++) await register()
const login = () => call('POST', '/api/users/login/', { body: { email: 'cost0@example.com', password: 'a-long-unusual-passphrase' } })

async function everyRoute() {
  const tokens = (await login()).body as { access: string; refresh: string }
  const ids = (await call('GET', '/api/users/?search=Cost&page_size=20', { token: tokens.access })).body.results.map((user: { id: string }) => user.id) as string[]
  await measure('(no request: the idle baseline)', async () => ({ status: 0 }), 'what runs anyway in the same 300 ms')
  await measure('POST /register', register, 'and a verification mail')
  await measure('POST /login', login)
  await measure('GET /me (user cached)', () => call('GET', '/api/users/me/', { token: tokens.access }), 'the common case')
  clock.advance(60_000)
  await measure('GET /me (cache expired)', () => call('GET', '/api/users/me/', { token: tokens.access }), 'once per user per USER_CACHE_TTL per instance')
  await measure('GET /users/{id}', () => call('GET', `/api/users/${ids[1]}/`, { token: tokens.access }))
  await measure('GET /users/?ids= (20 ids)', () => call('GET', `/api/users/?ids=${ids.join(',')}`, { token: tokens.access }))
  await measure('GET /users/?search= (a page)', () => call('GET', '/api/users/?search=Cost', { token: tokens.access }))
  await measure('PATCH /update (name)', () => call('PATCH', '/api/users/update/', { token: tokens.access, body: { full_name: `Renamed ${registered++}` } }), 'its PUBLISH included')
  await measure('POST /refresh', async () => {
    const response = await call('POST', '/api/users/refresh/', { body: { refresh: tokens.refresh } })
    Object.assign(tokens, response.body)
    return response
  })
  await measure('GET /sessions', () => call('GET', '/api/users/sessions/', { token: tokens.access }))
  await measure('POST /logout', () => call('POST', '/api/users/logout/', { token: tokens.access, body: { refresh: tokens.refresh } }))
  const again = (await login()).body as { access: string }
  await measure('POST /logout-all', () => call('POST', '/api/users/logout-all/', { token: again.access }))
}
// The first pass loads every Lua script and prepares every statement (one extra round trip each, once per process).
await everyRoute()
rows = []
await everyRoute()

console.log('| route | status | Redis round trips | Redis commands (incl. in scripts) | Postgres statements | Postgres round trips | statements after the response (relays) | note |')
console.log('|---|---:|---:|---:|---:|---:|---:|---|')
for (const row of rows) console.log(row)

await Promise.all([deps.relay.stop({ deadlineMs: 1_000 }), deps.mailRelay.stop({ deadlineMs: 1_000 })])
await deps.userCache.close()
monitor.destroy()
client.destroy()
await database.close()
await testDb.drop()
proxy.close()
redisServer.kill()
