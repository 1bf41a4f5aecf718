// First: it sets NODE_ENV before Elysia reads it.
import './node-env'
import { statSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { version } from '../package.json'
import { createApp } from './app'
import { SERVER_BODY_LIMIT } from './http/body'
import { systemClock } from './clock'
import { ConfigError, isEmbedded, loadConfig, type Config } from './config'
import { createDeps, openDatabase, userInvalidations } from './deps'
import { createLogger, type Logger } from './logger'
import { importDjangoUsers, type ImportOptions } from './migration/django-import'
import { createProgress, formatSummary } from './migration/import-report'
import { loadOrCreateSecretKey } from './secret-key'
import { openRedis } from './redis/client'
import { createFileStore } from './storage/files'
import { pictureLimits } from './users/picture'
import { loadSharp } from './users/sharp'
import { setAdmin as setAdminFlag } from './users/service'
import { raceTimer } from './timeout'

const usage = `usage: users [serve]            start the service (default)
       users --version          print the version
       users migrate            apply database migrations and exit
       users healthcheck        exit 0 when the service on PORT answers /health/live
       users admin grant <email>   make a user an admin
       users admin revoke <email>  take admin rights away
       users import-django --from <postgres url> [--media <dir>] [--media-url <url>] [--dry-run] [--emit-events]
                                import the old Django service's users`

async function main(args: string[]) {
  if (args[0] === '--version' || args[0] === 'version') return console.log(`users ${version}`)
  const config = readConfig()
  const logger = createLogger(config.logLevel)
  const [command = 'serve', ...rest] = args
  switch (command) {
    case 'serve':
      return serve(withSecretKey(config, logger), logger)
    case 'healthcheck':
      return healthcheck(config)
    case 'migrate':
      return migrate(withSecretKey(config, logger), logger)
    case 'admin':
      return setAdmin(withSecretKey(config, logger), logger, rest)
    case 'import-django':
      // It signs nothing, so it needs no SECRET_KEY.
      return importDjango(config, logger, rest)
    default:
      exit(usage)
  }
}

function readConfig(): Config {
  try {
    return loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) exit(`configuration error: ${error.message}`)
    throw error
  }
}

function withSecretKey(config: Config, logger: Logger): Config & { secretKey: string } {
  if (config.secretKey) return { ...config, secretKey: config.secretKey }
  if (!isEmbedded(config)) exit('configuration error: SECRET_KEY: required when a database is configured')
  const { secretKey, created } = loadOrCreateSecretKey(config.dataDir)
  logger.warn(
    { dataDir: config.dataDir },
    created ? 'SECRET_KEY is not set: generated one and kept it in the data folder' : 'SECRET_KEY is not set: using the one kept in the data folder',
  )
  return { ...config, secretKey }
}

// Within a typical 30 s termination grace period: in-flight requests first, then the outbox flush.
const SHUTDOWN_REQUESTS_MS = 15_000
const SHUTDOWN_FLUSH_MS = 10_000

async function serve(config: Config & { secretKey: string }, logger: Logger) {
  // Loaded before listening: an image without the libraries libvips needs (libstdc++) fails here, in one
  // line, rather than answering 500 to every upload.
  await loadSharp().catch((error: unknown) => exit(`cannot load libvips for profile pictures: ${error instanceof Error ? error.message : String(error)}`))
  const { deps, database, close } = await createDeps(config, logger)
  const app = listen(createApp(deps), config, logger)
  logger.info({ port: config.port, database: database.driver, broker: config.amqpUrl !== undefined }, 'users service listening')
  // Stop accepting, let in-flight requests finish (cut off at the deadline), publish what the outbox
  // holds, then close the connections it needed.
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down')
    // Not awaited: it resolves only once every connection is closed, and an idle keep-alive connection
    // (a browser's) would hold it until its idle timeout.
    void app.server?.stop()
    // Handlers of clients that already left may still run; they need the pools a little longer.
    await raceTimer(deps.requests.idle(), SHUTDOWN_REQUESTS_MS, () => undefined)
    // Every request has been answered: what is still open is idle, and is closed now.
    await app.stop(true)
    await close(SHUTDOWN_FLUSH_MS)
    logger.info('stopped')
    // The log is buffered: what is still in the buffer is written before the process goes.
    await new Promise<void>((resolve) => logger.flush(() => resolve()))
    process.exit(0)
  }
  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)
}

// Elysia listens with reusePort by default: a second instance on a taken port then started silently and
// shared the port with the first. Without it, a taken port is an error, said in one line.
function listen(app: ReturnType<typeof createApp>, config: Config & { secretKey: string }, logger: Logger) {
  try {
    return app.listen({ hostname: config.host, port: config.port, maxRequestBodySize: SERVER_BODY_LIMIT, reusePort: false })
  } catch (error) {
    const code = (error as { code?: string }).code
    const reason = code === 'EADDRINUSE' ? 'the port is already in use' : error instanceof Error ? error.message : String(error)
    logger.fatal({ host: config.host, port: config.port, code }, `cannot listen on ${config.host}:${config.port}: ${reason}`)
    logger.flush()
    process.exit(1)
  }
}

// The container's HEALTHCHECK: the image has no shell or curl, so the binary asks itself.
async function healthcheck(config: Config) {
  const response = await fetch(`http://127.0.0.1:${config.port}/health/live`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined)
  process.exit(response?.ok ? 0 : 1)
}

async function migrate(config: Config & { secretKey: string }, logger: Logger) {
  const database = await openDatabase(config)
  await database.close()
  logger.info({ database: database.driver }, 'migrations applied')
}

async function setAdmin(config: Config & { secretKey: string }, logger: Logger, [action, email]: string[]) {
  if ((action !== 'grant' && action !== 'revoke') || !email) exit(usage)
  const database = await openDatabase(config)
  // Running instances forget their cached row at once (through Redis) rather than after its TTL.
  const redis = await openRedis(config, logger)
  const bus = redis && userInvalidations(redis, config.redisKeyPrefix)
  try {
    // The user.updated event waits in the outbox for a running service's relay sweep.
    const deps = { db: database.db, clock: systemClock, files: createFileStore(config), userCache: { invalidate: async (id: string) => bus?.publish(id) } }
    const user = await setAdminFlag(deps, email, action === 'grant')
    if (!user) exit(`no user with the email ${email}`)
    logger.info({ userId: user.id }, action === 'grant' ? 'admin rights granted' : 'admin rights revoked')
  } finally {
    redis?.destroy()
    await database.close()
  }
}

async function importDjango(config: Config, logger: Logger, args: string[]) {
  const options = importOptions(args)
  const database = await openDatabase(config)
  const progress = createProgress(process.stderr, logger)
  try {
    const deps = { db: database.db, files: createFileStore(config), clock: systemClock, logger, pictureLimits: pictureLimits(config) }
    const summary = await importDjangoUsers(deps, { ...options, onProgress: progress.update })
    progress.finish()
    process.stdout.write(formatSummary(summary))
  } catch (error) {
    progress.finish()
    exit(`import failed: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    await database.close()
  }
}

const importFlags = {
  from: { type: 'string' },
  media: { type: 'string' },
  'media-url': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'emit-events': { type: 'boolean' },
} as const

function importOptions(args: string[]): ImportOptions {
  const values = parseFlags(args)
  const { from, media, 'media-url': mediaUrl } = values
  if (!from || !/^postgres(ql)?:\/\//.test(from)) exit(`--from: expected the old database's postgres:// URL\n${usage}`)
  if (media !== undefined && !statSync(media, { throwIfNoEntry: false })?.isDirectory()) exit(`--media: ${media} is not a folder`)
  if (mediaUrl !== undefined && !/^https?:\/\//.test(mediaUrl)) exit('--media-url: expected the old MEDIA_URL, starting with http:// or https://')
  return { from, mediaDir: media, mediaUrl, dryRun: values['dry-run'], emitEvents: values['emit-events'] }
}

function parseFlags(args: string[]) {
  try {
    return parseArgs({ args, options: importFlags }).values
  } catch (error) {
    exit(`${(error as Error).message}\n${usage}`)
  }
}

function exit(message: string): never {
  console.error(message)
  process.exit(1)
}

await main(process.argv.slice(2))
