import { afterAll, beforeAll } from 'bun:test'
import { connectRedis, connectRedisCluster, masterClients, type RedisClient } from '../../src/redis/client'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** The 3-master cluster `.ci/redis-cluster` starts. */
export const TEST_REDIS_CLUSTER_NODES = (process.env.TEST_REDIS_CLUSTER_NODES ?? 'redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103').split(',')

/** Which Redis a test runs on: the machine's standalone one, or the local cluster. */
export type RedisKind = 'redis' | 'cluster'
export const REDIS_KINDS: RedisKind[] = ['redis', 'cluster']

const quiet = { info() {}, warn() {} }

/** A client of the standalone Redis at `url` or of the cluster at `nodes`. */
export const connectTestRedis = (kind: RedisKind, target?: string | string[]): Promise<RedisClient> =>
  kind === 'cluster'
    ? connectRedisCluster(Array.isArray(target) ? target : TEST_REDIS_CLUSTER_NODES, quiet)
    : connectRedis(typeof target === 'string' ? target : TEST_REDIS_URL, quiet)

/** Deletes every key under `prefix`, on each master of a cluster (a scan sees one node's keys only). */
export async function deletePrefix(client: RedisClient, prefix: string) {
  for (const node of await masterClients(client)) {
    for await (const keys of node.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      // One key per DEL: a cluster refuses a DEL whose keys lie in different slots.
      await Promise.all(keys.map((key) => node.unlink(key)))
    }
  }
}

/** Every key under `prefix`, from every master. */
export async function keysUnder(client: RedisClient, prefix: string) {
  const found: string[] = []
  for (const node of await masterClients(client)) {
    for await (const keys of node.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) found.push(...keys)
  }
  return found.sort()
}

/** A client of each kind for the calling test file, connected before its tests; the keys under `prefix` go after them. */
export function clientsOfEveryKind(prefix: string): Record<RedisKind, RedisClient> {
  const clients = {} as Record<RedisKind, RedisClient>
  beforeAll(async () => {
    for (const kind of REDIS_KINDS) clients[kind] = await connectTestRedis(kind)
  })
  afterAll(async () => {
    for (const client of Object.values(clients)) {
      await deletePrefix(client, prefix)
      client.destroy()
    }
  })
  return clients
}
