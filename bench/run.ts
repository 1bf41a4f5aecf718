// `bun run bench [--quick | --full | --smoke]`: the service on this machine's Postgres, Redis and RabbitMQ,
// under wrk on loopback, next to two baselines measured the same way. bench/README.md says what
// each row means.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { connect, type Channel } from 'amqplib'
import { sql } from 'drizzle-orm'
import { HASHING_PARALLELISM } from '../src/users/passwords'
import { createTokens, type TokenPair, type Tokens } from '../src/sessions/tokens'
import { systemClock } from '../src/clock'
import { loadConfig, type Config } from '../src/config'
import { openPostgres } from '../src/db'
import { connectRedis } from '../src/redis/client'
import { createRedisSessionStore } from '../src/sessions/redis-store'
import type { SessionStore } from '../src/sessions/store'
import { users } from '../src/users/table'
import { createTestDatabase, TEST_REDIS_URL } from '../test/support/app'
import { BROKER_URL } from '../test/support/broker'
import { freePort } from '../test/support/process'
import { deletePrefix } from '../test/support/redis'
import { formatMarkdown, type Report, type Row } from './report'
import { problems, wrk, wrkVersion, type WrkResult, type WrkRun } from './wrk'

const MODES = {
  // Only that every run completes without errors: CI runs it so the harness cannot rot.
  smoke: { warmupSeconds: 0, seconds: 1, eventRounds: 20 },
  quick: { warmupSeconds: 2, seconds: 5, eventRounds: 200 },
  full: { warmupSeconds: 5, seconds: 30, eventRounds: 1000 },
}
type Mode = keyof typeof MODES

const THREADS = 2
const CONNECTIONS = 64
// Login is bounded by hashing: a few connections keep every core hashing while /me takes the full load.
const LOGIN_LOAD_CONNECTIONS = 16
const SEEDED_USERS = 10_000
const DIRECTORY_IDS = 20
const UPDATING_USERS = 1_000
const PASSWORD = 'bench-passphrase-not-common'
// The refresh token pool is sized from the rate of the run before (the first guess: GET /me's) times this:
// the pool is split evenly between wrk's threads, which do not serve evenly, and the rate varies from run to run.
const REFRESH_POOL_MARGIN = 2
const MIN_REFRESH_POOL = 2_000
const EVENT_TIMEOUT_MS = 5_000
// Under 5 ticks of CPU time (usually 50 ms) in half a second: what a server does between runs.
const IDLE_TICKS = 5
const OUTBOX_DRAIN_TIMEOUT_MS = 120_000

const LOAD = { threads: THREADS, connections: CONNECTIONS }
const ROOT = join(import.meta.dir, '..')
const RESULTS = join(import.meta.dir, 'results')

const mode = parseMode(process.argv.slice(2))
const settings = { threads: THREADS, connections: CONNECTIONS, ...MODES[mode] }
const scratch = mkdtempSync(join(tmpdir(), 'users-bench-'))
const run = crypto.randomUUID().slice(0, 8)
const cleanups: (() => Promise<unknown>)[] = [async () => rmSync(scratch, { recursive: true, force: true })]
let cleaning: Promise<void> | undefined
const cleanUp = () =>
  (cleaning ??= (async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.error('cleanup failed:', error))
  })())
const tag = () => crypto.randomUUID().slice(0, 8)
const started = performance.now()
const progress = (message: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`)
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)))

async function bench(): Promise<number> {
  const machine = await machineInfo()
  console.log(`${mode} run: ${settings.warmupSeconds}s warm-up + ${settings.seconds}s per row, wrk -t${THREADS} -c${CONNECTIONS}`)
  console.log(`${machine.cpu}, ${machine.cores} cores, Bun ${machine.bun}, wrk ${machine.wrk}, load average ${machine.loadAverage.start.toFixed(2)}`)

  const queue = `bench.users.${run}`
  const secret = crypto.randomUUID() + crypto.randomUUID()
  const serviceEnv = benchEnv(queue, secret)
  const config = loadConfig(serviceEnv)
  const tokens = await createTokens({ secret, accessSeconds: config.accessTokenSeconds, refreshSeconds: config.refreshTokenSeconds }, systemClock)
  const { rows, row } = createRows()

  await measureBaselines(row, tokens, secret)
  const { database, redis, channel } = await openBackends(serviceEnv, queue)
  const serve = [join(ROOT, 'src/main.ts'), 'serve']
  const service = await startServer(serve, { ...serviceEnv, DATABASE_URL: database.url, DATA_DIR: join(scratch, 'data') }, '/health/ready', drainOutbox)
  const ids = await seed(database.url, config)
  progress(`service started, ${SEEDED_USERS} users seeded`)
  const sessions = createRedisSessionStore({ client: redis, prefix: serviceEnv.REDIS_KEY_PREFIX })
  const mint = tokenMinter(tokens, sessions, config)
  const bench: BenchRun = { rows, row, service, api: `${service.base}/api/users`, ids, mint, as: async (userId) => ({ authorization: `JWT ${(await mint([userId]))[0]!.access}` }) }

  const me = await measureReads(bench, { serve, serviceEnv, databaseUrl: database.url })
  await measureWrites(bench, channel, queue, me)
  await service.settle()
  await measureLogins(bench, config)
  // Logins still hashing when wrk stops would meet a closed database pool at shutdown.
  await service.settle()

  machine.loadAverage.end = loadavg()[0]!
  return writeReport(machine, rows, config)
}

/** What the rows of one run share: where they are kept, the service under test, its seeded users, and tokens for them. */
type BenchRun = {
  rows: Row[]
  row: (key: string, label: string, result: Measured) => Row
  service: Server
  api: string
  ids: string[]
  mint: (userIds: string[]) => Promise<TokenPair[]>
  as: (userId: string) => Promise<Record<string, string>>
}

/** The environment of the service under test: its own Redis keys and queue, and limits out of the way. */
function benchEnv(queue: string, secret: string) {
  return {
    SECRET_KEY: secret,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `bench:${run}:`,
    AMQP_URL: BROKER_URL,
    QUEUE_LIST: queue,
    QUEUE_DURABLE: 'false',
    EVENTS_EXCHANGE: `${queue}.events`,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // As the image runs it (Dockerfile): the heap sized for 256 MiB rather than the machine's RAM.
    BUN_JSC_forceRAMSize: '268435456',
    // Every request comes from 127.0.0.1; the limits would otherwise measure the 429 path.
    LOGIN_FAILURES_PER_ACCOUNT_ADDRESS: '1000000000',
    LOGIN_FAILURES_PER_ACCOUNT: '1000000000',
    LOGIN_FAILURES_PER_ADDRESS: '1000000000',
    REGISTRATIONS_PER_ADDRESS: '1000000000',
  }
}

/** The report's rows, each announced as it is measured. */
function createRows() {
  const rows: Row[] = []
  const row = (key: string, label: string, result: Measured) => {
    const entry: Row = { key, label, ...result, problems: problems(result) }
    rows.push(entry)
    progress(`${label}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${entry.problems.length ? ` — ${entry.problems.join(', ')}` : ''}`)
    return entry
  }
  return { rows, row }
}

/** The ceilings: a bare Bun.serve, and a server that only verifies the token. */
async function measureBaselines(row: BenchRun['row'], tokens: Tokens, secret: string) {
  const baselineUser = crypto.randomUUID()
  const baselineToken = (await tokens.issuePair(baselineUser, crypto.randomUUID())).pair.access
  for (const [key, label, file] of [['bare', 'baseline: bare Bun.serve', 'bare'], ['jwt', 'baseline: JWT verify only', 'jwt-verify']] as const) {
    const server = await startServer([join(import.meta.dir, 'baselines', `${file}.ts`)], { SECRET_KEY: secret, BENCH_USER_ID: baselineUser })
    row(key, label, await measure(server, async (seconds) => ({ url: `${server.base}/api/users/me/`, seconds, ...LOAD, headers: { authorization: `JWT ${baselineToken}` } })))
    await server.stop()
  }
}

/** A fresh database, the Redis client and an AMQP channel, each with its cleanup registered. */
async function openBackends(serviceEnv: ReturnType<typeof benchEnv>, queue: string) {
  const database = await createTestDatabase('bench')
  cleanups.push(database.drop)
  const redis = await connectRedis(TEST_REDIS_URL, { info: () => {}, warn: () => {} })
  cleanups.push(async () => {
    await deletePrefix(redis, serviceEnv.REDIS_KEY_PREFIX)
    redis.destroy()
  })
  const amqp = await connect(BROKER_URL)
  const channel = await amqp.createChannel()
  cleanups.push(async () => {
    await channel.deleteQueue(queue)
    await channel.deleteExchange(serviceEnv.EVENTS_EXCHANGE)
    await amqp.close()
  })
  return { database, redis, channel }
}

/** Token pairs with live sessions, made as /login makes them once the password is right: login itself is hash-bound, far too slow to make thousands. */
function tokenMinter(tokens: Tokens, sessions: SessionStore, config: Config) {
  return async (userIds: string[]) => {
    const pairs = []
    for (let i = 0; i < userIds.length; i += 500)
      pairs.push(...(await Promise.all(userIds.slice(i, i + 500).map(async (userId) => {
        const sid = crypto.randomUUID()
        const { pair, refreshJti } = await tokens.issuePair(userId, sid)
        await sessions.create({ sid, userId, refreshJti, ttlSeconds: config.refreshTokenSeconds, ip: '127.0.0.1', userAgent: 'wrk', now: Date.now() })
        return pair
      }))))
    return pairs
  }
}

async function tokenFile(lines: string[]) {
  const file = join(scratch, `tokens-${crypto.randomUUID()}.txt`)
  await Bun.write(file, `${lines.join('\n')}\n`)
  return file
}

/** GET /me (also at LOG_LEVEL=info), another user, and the directory; returns the /me row, which sizes the refresh pool. */
async function measureReads({ row, service, api, ids, as }: BenchRun, logged: { serve: string[]; serviceEnv: ReturnType<typeof benchEnv>; databaseUrl: string }) {
  const me = row('me', 'GET /me', await measure(service, async (seconds) => ({ url: `${api}/me/`, seconds, ...LOAD, headers: await as(ids[0]!) })))
  // The same at the default log level, from a second instance on the same database and Redis keys: one
  // access-log line a request, serialised and written to stdout (here /dev/null, so no reader slows it).
  const { serve, serviceEnv, databaseUrl } = logged
  const logging = await startServer(serve, { ...serviceEnv, LOG_LEVEL: 'info', DATABASE_URL: databaseUrl, DATA_DIR: join(scratch, 'data-info') }, '/health/ready', drainOutbox, 'ignore')
  row('me-info', 'GET /me at LOG_LEVEL=info', await measure(logging, async (seconds) => ({ url: `${logging.base}/api/users/me/`, seconds, ...LOAD, headers: await as(ids[0]!) })))
  await logging.stop()
  row('user', 'GET /users/{id}', await measure(service, async (seconds) => ({ url: `${api}/${ids[1]}/`, seconds, ...LOAD, headers: await as(ids[0]!) })))
  const directoryIds = ids.slice(1, 1 + DIRECTORY_IDS).join(',')
  row('directory', `GET /users/?ids= (${DIRECTORY_IDS} ids)`, await measure(service, async (seconds) => ({ url: `${api}/?ids=${directoryIds}`, seconds, ...LOAD, headers: await as(ids[0]!) })))
  return me
}

/** Event latency, PUT /update with the outbox backlog it leaves, and POST /refresh. */
async function measureWrites({ rows, row, service, api, ids, mint, as }: BenchRun, channel: Channel, queue: string, me: Row) {
  const json = { 'content-type': 'application/json' }
  const events = await measureEventLatency(channel, queue, `${api}/update/`, await as(ids[1]!))
  rows.push(events)
  progress(`${events.label}: p50 ${events.p50Ms.toFixed(2)} ms, p99 ${events.p99Ms.toFixed(2)} ms${events.problems.length ? ` — ${events.problems.join(', ')}` : ''}`)
  const updaters = await tokenFile((await mint(ids.slice(2, 2 + UPDATING_USERS))).map((pair) => pair.access))
  const update = row('update', 'PUT /update', await measure(service, async (seconds) => ({
    url: `${api}/update/`, seconds, ...LOAD, headers: json, script: { name: 'update', args: [updaters, tag(), THREADS] },
  })))
  const backlog = await drainOutbox(service.base)
  update.note = `outbox backlog at the end: ${backlog.pending} events, published ${(backlog.ms / 1000).toFixed(1)} s later`
  progress(update.note)

  row('refresh', 'POST /refresh', await measure(service, async (seconds, previous) => {
    const rate = previous?.requestsPerSecond ?? me.requestsPerSecond!
    const size = Math.max(MIN_REFRESH_POOL, Math.ceil(rate * seconds * REFRESH_POOL_MARGIN))
    const pool = await mint(Array.from({ length: size }, (_, i) => ids[i % ids.length]!))
    return { url: `${api}/refresh/`, seconds, ...LOAD, headers: json, script: { name: 'refresh', args: [await tokenFile(pool.map((pair) => pair.refresh)), THREADS] } }
  }))
}

/** argon2id alone (the bound of login), POST /login and /register, then /me and /login under each other's load. */
async function measureLogins({ rows, row, service, api, ids, as }: BenchRun, config: Config) {
  const json = { 'content-type': 'application/json' }
  // Measured next to the rows it is the bound of, with the service idle (the caller settled it), so that both see the same machine.
  const argon2 = await measureHashing(config.argon2)
  rows.push({ key: 'argon2', label: `argon2id verify alone (${argon2.inFlight} at once)`, ...argon2, peakRssMb: null, problems: [] })
  progress(`argon2id: ${argon2.requestsPerSecond.toFixed(1)} verifications/s`)
  const login = (seconds: number, connections = CONNECTIONS): WrkRun => ({
    url: `${api}/login/`, seconds, threads: THREADS, connections, headers: json, script: { name: 'login', args: [SEEDED_USERS, PASSWORD, THREADS] },
  })
  row('login', 'POST /login', await measure(service, async (seconds) => login(seconds)))
  row('register', 'POST /register', await measure(service, async (seconds) => ({
    url: `${api}/register/`, seconds, ...LOAD, headers: json, script: { name: 'register', args: [tag(), PASSWORD] },
  })))

  const meHeaders = await as(ids[0]!)
  const [meUnderLogin, loginUnderMe] = await measureTogether(service, [
    (seconds) => ({ url: `${api}/me/`, seconds, ...LOAD, headers: meHeaders }),
    (seconds) => ({ ...login(seconds, LOGIN_LOAD_CONNECTIONS), threads: 1 }),
  ])
  row('me-during-login', `GET /me during login load (-c${LOGIN_LOAD_CONNECTIONS})`, meUnderLogin!)
  row('login-during-me', 'POST /login during /me load', loginUnderMe!)
}

/** Writes the report (a smoke run's apart) and prints it; 1 when any row had problems. */
function writeReport(machine: Awaited<ReturnType<typeof machineInfo>>, rows: Row[], config: Config): number {
  const report: Report = { mode, date: machine.date, machine, settings: { ...settings, seededUsers: SEEDED_USERS, argon2: config.argon2 }, rows: withRatios(rows) }
  mkdirSync(RESULTS, { recursive: true })
  // A smoke run's numbers mean nothing; it must not replace a measurement.
  const out = join(RESULTS, mode === 'smoke' ? 'smoke.json' : 'latest.json')
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`\n${formatMarkdown(report)}\nwritten to ${out}`)

  const failed = rows.filter((r) => r.problems.length > 0)
  for (const r of failed) console.error(`FAILED ${r.label}: ${r.problems.join(', ')}`)
  return failed.length ? 1 : 0
}

type Server = {
  base: string
  pid: number
  stop(): Promise<void>
  /** Waits until nothing is left over from the previous run. */
  settle(): Promise<unknown>
}
type Measured = WrkResult & { peakRssMb: number }

/** Makes a wrk run of the given length; `previous` is how the run before it went (the warm-up, say). */
type Build = (seconds: number, previous?: WrkResult) => WrkRun | Promise<WrkRun>

/** A warm-up run, discarded, then the measured run. */
async function measure(server: Server, build: Build): Promise<Measured> {
  const [result] = await measureTogether(server, [build])
  return result!
}

/** Runs wrk processes at once against one server, warm-up first; each result carries the server's peak RSS. */
async function measureTogether(server: Server, builds: Build[]): Promise<Measured[]> {
  const previous: (WrkResult | undefined)[] = []
  const runAll = async (seconds: number) => {
    await server.settle()
    const runs = await Promise.all(builds.map((build, i) => build(seconds, previous[i])))
    resetPeakRss(server.pid)
    const results = await Promise.all(runs.map((run) => wrk(run, scratch)))
    results.forEach((result, i) => (previous[i] = result))
    return results
  }
  if (settings.warmupSeconds > 0) await runAll(settings.warmupSeconds)
  let results = await runAll(settings.seconds)
  // A token pool is sized from the run before, or a guess; one that ran short says the rate to size it for.
  if (results.some((result) => result.exhausted > 0)) results = await runAll(settings.seconds)
  const peakRssMb = readPeakRssMb(server.pid)
  return results.map((result) => ({ ...result, peakRssMb }))
}

/** Starts `bun <args>` on a free port with only the given environment, and waits until it answers (200 on `ready`, if given). */
async function startServer(
  args: string[],
  env: Record<string, string>,
  ready?: string,
  settle?: (base: string) => Promise<unknown>,
  stdout: 'inherit' | 'ignore' = 'inherit',
): Promise<Server> {
  const port = freePort()
  // Run from an empty folder, so that no .env of the checkout changes what is measured.
  const cwd = mkdtempSync(join(scratch, 'cwd-'))
  const child = Bun.spawn(['bun', ...args], {
    cwd,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...env, PORT: String(port) },
    stdout,
    stderr: 'inherit',
  })
  const stop = async () => {
    child.kill('SIGTERM')
    if ((await Promise.race([child.exited, Bun.sleep(15_000).then(() => 'timeout')])) === 'timeout') child.kill('SIGKILL')
    await child.exited
  }
  cleanups.push(stop)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  const answers = (status: number) => (ready ? status === 200 : status > 0)
  while (!answers(await fetch(base + (ready ?? '/')).then((r) => r.status, () => 0))) {
    if (child.exitCode !== null) throw new Error(`bun ${args.join(' ')} exited with ${child.exitCode}`)
    if (Date.now() > deadline) throw new Error(`bun ${args.join(' ')} did not answer within a minute`)
    await Bun.sleep(100)
  }
  return {
    base,
    pid: child.pid,
    stop,
    settle: async () => {
      await settle?.(base)
      await idle(child.pid)
    },
  }
}

// VmHWM is the peak since the process started, unless written 5 to clear_refs resets it (Linux 4.0+);
// where the kernel refuses, the peak covers every earlier run too.
function resetPeakRss(pid: number) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {}
}

function readPeakRssMb(pid: number) {
  const kib = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m)?.[1]
  return Number(kib) / 1024
}

/** Waits until the process is idle, so that the work a run left queued (hashes, say) does not slow the next. */
async function idle(pid: number) {
  const ticks = () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return Number(fields[11]) + Number(fields[12])
  }
  const deadline = performance.now() + 60_000
  for (let before = ticks(); performance.now() < deadline; ) {
    await Bun.sleep(500)
    const now = ticks()
    if (now - before < IDLE_TICKS) return
    before = now
  }
  console.warn(`process ${pid} is still busy after a minute; measuring anyway`)
}

/** The service's events wait in its outbox when the relay falls behind; each run starts with none. */
async function drainOutbox(base: string) {
  const started = performance.now()
  let first: number | undefined
  for (;;) {
    const ready = (await (await fetch(`${base}/health/ready`)).json()) as { checks?: { outbox?: { pending?: number } } }
    const pending = ready.checks?.outbox?.pending ?? 0
    first ??= pending
    if (pending === 0) return { pending: first, ms: performance.now() - started }
    if (performance.now() - started > OUTBOX_DRAIN_TIMEOUT_MS) throw new Error(`the outbox still holds ${pending} events after ${OUTBOX_DRAIN_TIMEOUT_MS / 1000} s`)
    await Bun.sleep(50)
  }
}

/** Users straight into the table, with one hash of the service's cost: registering them would take minutes. */
async function seed(url: string, config: Config) {
  const database = await openPostgres(url, { max: 2 })
  try {
    const passwordHash = await Bun.password.hash(PASSWORD, { algorithm: 'argon2id', ...config.argon2 })
    const now = new Date()
    const ids = Array.from({ length: SEEDED_USERS }, () => Bun.randomUUIDv7())
    for (let i = 0; i < ids.length; i += 1000)
      await database.db.insert(users).values(ids.slice(i, i + 1000).map((id, j) => ({
        id, email: `bench-user-${i + j}@example.com`, fullName: `Bench User ${i + j}`, passwordHash, createdAt: now, updatedAt: now,
      })))
    // Fresh statistics now, so the planner does not change its mind halfway through the runs.
    await database.db.execute(sql`analyze users`)
    return ids
  } finally {
    await database.close()
  }
}

/** What hashing alone allows: argon2id verifications at the service's cost, as many in flight as the service allows. */
async function measureHashing(params: Config['argon2']) {
  const options = { algorithm: 'argon2id', ...params } as const
  const hash = await Bun.password.hash(PASSWORD, options)
  const inFlight = HASHING_PARALLELISM
  const verifyFor = async (seconds: number) => {
    const samples: number[] = []
    const started = performance.now()
    const deadline = started + seconds * 1000
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now()
        await Bun.password.verify(PASSWORD, hash)
        samples.push(performance.now() - t)
      }
    }))
    return { samples, seconds: (performance.now() - started) / 1000 }
  }
  if (settings.warmupSeconds > 0) await verifyFor(settings.warmupSeconds)
  const { samples, seconds } = await verifyFor(settings.seconds)
  return { requestsPerSecond: samples.length / seconds, ...percentiles(samples), inFlight }
}

/** PUT /update responses one at a time, each timed until its user.updated event is consumed from the queue. */
async function measureEventLatency(channel: Channel, queue: string, url: string, headers: Record<string, string>): Promise<Row> {
  const arrivals = new Map<string, number>()
  await channel.assertQueue(queue, { durable: false })
  await channel.purgeQueue(queue)
  const { consumerTag } = await channel.consume(queue, (message) => {
    if (message === null) return
    arrivals.set((JSON.parse(message.content.toString()) as { full_name: string }).full_name, performance.now())
    channel.ack(message)
  })
  const samples: number[] = []
  const failures: string[] = []
  const run = tag()
  for (let i = 0; i < settings.eventRounds; i++) {
    const name = `Latency ${run} ${i}`
    const response = await fetch(url, { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ full_name: name }) })
    const respondedAt = performance.now()
    await response.arrayBuffer()
    if (response.status !== 200) failures.push(`PUT answered ${response.status}`)
    while (!arrivals.has(name) && performance.now() - respondedAt < EVENT_TIMEOUT_MS) await Bun.sleep(1)
    const arrived = arrivals.get(name)
    if (arrived === undefined) failures.push(`no event within ${EVENT_TIMEOUT_MS} ms`)
    else samples.push(arrived - respondedAt)
  }
  await channel.cancel(consumerTag)
  return {
    key: 'event',
    label: `PUT /update → event consumed (${settings.eventRounds} in turn)`,
    requestsPerSecond: null,
    ...percentiles(samples),
    peakRssMb: null,
    problems: [...new Set(failures)],
  }
}

function percentiles(samples: number[]) {
  const sorted = samples.toSorted((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
  return { p50Ms: at(0.5), p99Ms: at(0.99) }
}

function withRatios(rows: Row[]): Row[] {
  const rate = (key: string) => rows.find((r) => r.key === key)?.requestsPerSecond ?? undefined
  const [bare, jwt, argon2] = [rate('bare'), rate('jwt'), rate('argon2')]
  const hashBound = new Set(['login', 'register', 'login-during-me'])
  return rows.map((r) => {
    const own = r.requestsPerSecond
    if (own === null || r.key === 'argon2') return r
    return {
      ...r,
      vsBare: bare && own / bare,
      vsJwt: jwt && own / jwt,
      ...(hashBound.has(r.key) && { vsArgon2: argon2 && own / argon2 }),
    }
  })
}

async function machineInfo() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? 'unknown'
  return {
    cpu,
    cores: availableParallelism(),
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    bun: Bun.version,
    wrk: await wrkVersion(),
    loadAverage: { start: loadavg()[0]!, end: NaN },
    date: new Date().toISOString(),
  }
}

function parseMode(args: string[]): Mode {
  const modes = args.map((arg) => arg.replace(/^--/, ''))
  const unknown = modes.find((m) => !(m in MODES))
  if (unknown !== undefined || modes.length > 1) {
    console.error('usage: bun run bench [--quick (default) | --full | --smoke]')
    process.exit(2)
  }
  if (!Bun.which('wrk')) {
    console.error('wrk is not installed: apt-get install -y wrk')
    process.exit(2)
  }
  return (modes[0] ?? 'quick') as Mode
}

try {
  process.exitCode = await bench()
} finally {
  await cleanUp()
}
