import { createClient, createCluster, type RedisClientType, type RedisClusterType } from 'redis'
import { backoffDelay } from '../backoff'
import type { Logger } from '../logger'
import { addTracingChannelHasSubscribers } from './tracing'
import { raceTimer } from '../timeout'

/** One Redis server's client (a standalone Redis, or one node of a cluster). */
export type RedisNodeClient = RedisClientType

/**
 * What the Redis-backed stores expect: a standalone client or a cluster client. Both route a command by
 * its first key (the cluster to the master of the key's slot), so the stores issue the same calls to
 * either; the commands that name no key (PING, CONFIG, publish) go through {@link masterClients} and the
 * invalidation bus instead.
 */
export type RedisClient = RedisClientType | RedisClusterType

/** Where Redis is: one server, or the seed nodes of a cluster (REDIS_CLUSTER_NODES wins when both are set). */
export type RedisTarget = { redisUrl?: string; redisClusterNodes?: string[] }

const RECONNECT_BACKOFF = { initialMs: 50, maxMs: 1_000 }
// A blackholed connection would otherwise hang every authenticated request; fail and let the route answer 503.
const COMMAND_TIMEOUT_MS = 1_000
// How soon after a node stops answering the cluster client asks the others who owns its slots now: a
// failover promotes a replica within cluster-node-timeout, and until the client learns of it every
// command for those slots fails (503).
const TOPOLOGY_REFRESH_MS = 250

/** The shared backoff, capped so recovery after an outage takes about a second. */
export const reconnectDelay = (retries: number): number => Math.round(backoffDelay(retries + 1, RECONNECT_BACKOFF))

export const isCluster = (client: RedisClient): client is RedisClusterType => 'masters' in client

/** The configured Redis, or undefined when none is (sessions then live in this process). */
export function openRedis(target: RedisTarget, logger: Pick<Logger, 'info' | 'warn'>): Promise<RedisClient> | undefined {
  if (target.redisClusterNodes?.length) return connectRedisCluster(target.redisClusterNodes, logger)
  if (target.redisUrl) return connectRedis(target.redisUrl, logger)
  return undefined
}

/**
 * Creates a client that reconnects forever and rejects commands immediately while disconnected.
 * Resolves once connected, or after the first failed attempt (the client keeps retrying in the background),
 * so a Redis outage at boot degrades to 503s instead of blocking startup.
 */
export async function connectRedis(url: string, logger: Pick<Logger, 'info' | 'warn'>): Promise<RedisClientType> {
  addTracingChannelHasSubscribers()
  const client: RedisClientType = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: { reconnectStrategy: reconnectDelay },
  })
  let healthy = true
  // Without an 'error' listener node-redis' EventEmitter would throw and crash the process.
  client.on('error', (err: unknown) => {
    if (healthy) logger.warn({ err }, 'redis unavailable; commands fail until it is back')
    healthy = false
  })
  client.on('ready', () => {
    if (!healthy) logger.info('redis connection restored')
    healthy = true
  })
  const connected = client.connect().then(
    () => undefined,
    (err: unknown) => logger.warn({ err }, 'redis client stopped connecting'),
  )
  let onFirstFailure = () => {}
  const firstFailure = new Promise<void>((resolve) => (onFirstFailure = resolve))
  client.once('error', onFirstFailure)
  await Promise.race([connected, firstFailure])
  client.off('error', onFirstFailure)
  return client
}

/**
 * A Redis Cluster client over the seed nodes (`redis://host:port`), with the standalone client's rules:
 * nodes reconnect forever, commands fail at once while their node is away, and start-up does not wait
 * for an unreachable cluster (discovery is retried in the background; commands fail meanwhile).
 */
export async function connectRedisCluster(nodes: string[], logger: Pick<Logger, 'info' | 'warn'>): Promise<RedisClusterType> {
  addTracingChannelHasSubscribers()
  const cluster: RedisClusterType = createCluster({
    rootNodes: nodes.map((url) => ({ url })),
    defaults: { disableOfflineQueue: true, socket: { reconnectStrategy: reconnectDelay } },
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    topologyRefreshOnReconnectionAttemptStrategy: TOPOLOGY_REFRESH_MS,
  })
  const down = new Set<string>()
  const nodeName = (node: { host?: string; port?: number }) => `${node.host}:${node.port}`
  // Without these listeners node-redis' EventEmitter would throw and crash the process.
  cluster.on('error', (err: unknown) => logger.warn({ err }, 'redis cluster unavailable; commands fail until it is back'))
  cluster.on('node-error', (err: unknown, node: { host?: string; port?: number }) => {
    if (!down.has(nodeName(node))) logger.warn({ err, node: nodeName(node) }, 'redis cluster node unavailable; its slots fail until it or a replica is back')
    down.add(nodeName(node))
  })
  cluster.on('node-ready', (node: { host?: string; port?: number }) => {
    if (down.delete(nodeName(node))) logger.info({ node: nodeName(node) }, 'redis cluster node connection restored')
  })
  const connect = async (retries: number): Promise<void> => {
    try {
      await cluster.connect()
    } catch (err) {
      if (retries === 0) logger.warn({ err }, 'redis cluster not reachable; retrying in the background')
      // An unref'd timer: a cluster that never came up must not keep the process alive.
      await new Promise((resolve) => setTimeout(resolve, reconnectDelay(retries)).unref())
      return connect(retries + 1)
    }
  }
  const connected = connect(0)
  // Resolve after the first attempt either way, as connectRedis does.
  await raceTimer(connected, COMMAND_TIMEOUT_MS, () => undefined)
  return cluster
}

/**
 * The client of every master (the client itself when standalone): the commands that name no key, a
 * readiness PING or CONFIG GET, must reach each master, since each holds its own share of the keys.
 */
export async function masterClients(client: RedisClient): Promise<RedisNodeClient[]> {
  if (!isCluster(client)) return [client]
  return Promise.all(client.masters.map((master) => client.nodeClient(master) as Promise<RedisNodeClient>))
}

/** The error a command gets when Redis has not answered it within its deadline. */
export class CommandTimeoutError extends Error {
  constructor(ms: number) {
    super(`redis did not answer within ${ms} ms`)
  }
}

/**
 * Bounds how long a command may wait for its reply, with one timer for all of them. node-redis' own
 * per-command timeout arms an `AbortSignal.timeout` (a timer) and two listeners for every command: on
 * the session check of every authenticated request that was half the cost of the call. Here each
 * command is a queue entry; the queue is in start order, so one sweep every quarter of `ms` fails the
 * overdue ones from its head. A command fails between `ms` and 1.25 × `ms` after it started.
 */
export function commandDeadlines(ms: number, now: () => number = performance.now.bind(performance)) {
  type Entry = { startedAt: number; settled: boolean; reject(error: Error): void }
  let queue: Entry[] = []
  let head = 0
  let timer: ReturnType<typeof setInterval> | undefined
  const sweep = () => {
    const at = now()
    for (; head < queue.length; head++) {
      const entry = queue[head]!
      if (entry.settled) continue
      if (at - entry.startedAt < ms) break
      entry.settled = true
      entry.reject(new CommandTimeoutError(ms))
    }
    if (head === queue.length) {
      queue = []
      head = 0
      clearInterval(timer)
      timer = undefined
    } else if (head > 1024) {
      queue = queue.slice(head)
      head = 0
    }
  }
  return {
    /** `command`'s result, or a {@link CommandTimeoutError} once it has waited `ms`. */
    within<T>(command: Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const entry: Entry = { startedAt: now(), settled: false, reject }
        queue.push(entry)
        if (timer === undefined) {
          timer = setInterval(sweep, ms / 4)
          timer.unref()
        }
        command.then(
          (value) => {
            if (entry.settled) return
            entry.settled = true
            resolve(value)
          },
          (error: unknown) => {
            if (entry.settled) return
            entry.settled = true
            reject(error)
          },
        )
      })
    },
    /** Commands not yet settled, for tests. */
    pending: () => queue.slice(head).filter((entry) => !entry.settled).length,
  }
}

/** The client's commands without node-redis' per-command timer; bound them with {@link commandDeadlines}. */
export const withoutCommandTimeout = (client: RedisClient) => client.withCommandOptions({ timeout: 0 }) as unknown as RedisClient

/** The command timeout every client of {@link connectRedis} applies, for the callers that bound commands themselves. */
export const REDIS_COMMAND_TIMEOUT_MS = COMMAND_TIMEOUT_MS
