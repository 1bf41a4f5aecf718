import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { createApp } from '../../src/app'
import { manualClock } from '../../src/clock'
import { loadConfig, type Config } from '../../src/config'
import { openPglite, openPostgres, type DbHandle } from '../../src/db'
import { buildDeps, type Stores } from '../../src/deps'
import type { Publisher } from '../../src/events/publisher'
import { createLogger, type Logger } from '../../src/logger'
import { connectTestRedis, deletePrefix, type RedisKind } from './redis'
import { createLocalFileStore, type FileStore } from '../../src/storage/files'

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const TEST_SECRET = 'test-secret-key-that-is-long-enough-for-hs256'
export { TEST_REDIS_URL } from './redis'

/** A database of its own on the machine's Postgres, dropped by `drop()`. */
export async function createTestDatabase(label: string) {
  const name = `users_test_${label}_${crypto.randomUUID().slice(0, 8)}`.replace(/\W/g, '_')
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"`)
  const url = new URL(ADMIN_DATABASE_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`drop database if exists "${name}" with (force)`)
      await admin.end()
    },
  }
}

export type TestAppOptions = {
  driver?: 'postgres' | 'pglite'
  /** Sessions and rate limits on the machine's Redis, the local Redis Cluster, or in process. */
  store?: RedisKind | 'memory'
  env?: Record<string, string>
  label?: string
  /** Another Redis than the default: a URL, or with `store: 'cluster'` the cluster's seed nodes. */
  redisUrl?: string | string[]
  /** Another instance of the same deployment: the same database, Redis keys and clock, over connections of its own. */
  sameDeploymentAs?: Deployment
  /** Builds the app's RabbitMQ publisher from its config; none by default, so events stay in the outbox. */
  publisher?: (config: Config, logger: Logger) => Publisher
  /** The picture store; a local one in a temporary folder by default. */
  files?: FileStore
  logger?: Logger
}

type Deployment = {
  clock: ReturnType<typeof manualClock>
  database: DbHandle
  databaseUrl?: string
  redis?: TestRedis
  stores: Stores
}
type TestRedis = Awaited<ReturnType<typeof createTestRedis>>

export type TestApp = Awaited<ReturnType<typeof createTestApp>>

/** A Redis key prefix of its own, whose keys `clear()` deletes. */
export async function createTestRedis(
  label: string,
  url?: string | string[],
  prefix = `test:${label}:${crypto.randomUUID().slice(0, 8)}:`,
  kind: RedisKind = 'redis',
) {
  const client = await connectTestRedis(kind, url)
  return {
    client,
    kind,
    url,
    prefix,
    clear: () => deletePrefix(client, prefix),
    async close() {
      await this.clear().catch(() => {})
      client.destroy()
    },
  }
}

/** A complete app on a fresh database with a manual clock and a cheap password hash. */
export async function createTestApp(options: TestAppOptions = {}) {
  const { driver = 'postgres', store = 'redis', env = {}, label = 'app', sameDeploymentAs, logger = createLogger('silent', false) } = options
  const clock = sameDeploymentAs?.clock ?? manualClock()
  const cleanups: (() => Promise<void>)[] = []
  let url = sameDeploymentAs?.databaseUrl
  let database: DbHandle
  if (url) {
    database = await openPostgres(url, { max: 4 })
    cleanups.push(() => database.close())
  } else if (sameDeploymentAs) {
    database = sameDeploymentAs.database
  } else if (driver === 'postgres') {
    const testDb = await createTestDatabase(label)
    url = testDb.url
    database = await openPostgres(url, { max: 4 })
    cleanups.push(() => database.close(), testDb.drop)
  } else {
    database = await openPglite()
    cleanups.push(() => database.close())
  }

  let redis: TestRedis | undefined
  const shared = sameDeploymentAs?.redis
  if (shared) {
    // Its own connection to the same keys, as another instance of the service would have.
    redis = await createTestRedis(label, shared.url, shared.prefix, shared.kind)
    cleanups.unshift(async () => redis!.client.destroy())
  } else if (!sameDeploymentAs && store !== 'memory') {
    redis = await createTestRedis(label, options.redisUrl, undefined, store)
    cleanups.unshift(() => redis!.close())
  }

  // A data folder of its own: without SMTP_URL, mail is written there as .eml files.
  const dataDir = mkdtempSync(join(tmpdir(), 'users-data-'))
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }))
  const config = { ...testConfig({ DATA_DIR: dataDir, ...env }), redisKeyPrefix: redis?.prefix ?? '' }
  const publisher = options.publisher?.(config, logger)
  const mediaDir = mkdtempSync(join(tmpdir(), 'users-media-'))
  cleanups.push(async () => rmSync(mediaDir, { recursive: true, force: true }))
  const files = options.files ?? createLocalFileStore(mediaDir, config.publicUrl)
  const deps = await buildDeps(
    config,
    { database, redis: redis?.client, publisher, files, stores: sameDeploymentAs && !shared ? sameDeploymentAs.stores : undefined },
    logger,
    clock,
  )
  cleanups.unshift(async () => {
    deps.securityLogRetention.stop()
    await Promise.all([deps.relay.stop({ deadlineMs: 1_000 }), deps.mailRelay.stop({ deadlineMs: 1_000 })])
    await publisher?.close()
  })
  const app = createApp(deps)

  /** Calls the app in process, as a client would over HTTP. */
  async function call(method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...options.headers }
    if (options.body !== undefined) headers['content-type'] ??= 'application/json'
    if (options.token) headers.authorization ??= `JWT ${options.token}`
    const response = await app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
      }),
    )
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text ? tryJson(text) : undefined }
  }

  let counter = 0
  /** Registers a fresh user and returns its tokens and credentials. */
  async function registerUser(fields: { email?: string; full_name?: string; password?: string } = {}) {
    const input = {
      email: fields.email ?? `user${++counter}-${crypto.randomUUID().slice(0, 6)}@example.com`,
      full_name: fields.full_name ?? `User ${counter}`,
      password: fields.password ?? 'a-long-unusual-passphrase',
    }
    const response = await call('POST', '/api/users/register/', { body: input })
    if (response.status !== 200) throw new Error(`register failed: ${JSON.stringify(response.body)}`)
    const me = await call('GET', '/api/users/me/', { token: response.body.access })
    return { ...input, id: me.body.id as string, access: response.body.access as string, refresh: response.body.refresh as string }
  }

  return {
    app,
    deps,
    clock,
    database,
    databaseUrl: url,
    dataDir: config.dataDir,
    mediaDir,
    redis,
    publisher,
    stores: { sessions: deps.sessions, limiter: deps.limiter, flows: deps.oidcFlows },
    call,
    registerUser,
    async close() {
      for (const cleanup of cleanups) await cleanup()
    },
  }
}

export function testConfig(env: Record<string, string> = {}): Config & { secretKey: string } {
  const config = loadConfig({ SECRET_KEY: TEST_SECRET, PUBLIC_URL: 'http://users.test', ...env })
  // The cheapest argon2id: tests check behaviour, not hashing cost.
  return { ...config, secretKey: config.secretKey!, argon2: { memoryCost: 64, timeCost: 1 } }
}

const tryJson = (text: string) => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** A logger that keeps its lines for the test to read. */
export function capturingLogger(level = 'info') {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = []
  // The service's own logger configuration (its redaction included), writing here instead of stdout.
  const logger = createLogger(level, false, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return { logger, lines }
}
