import type { RedisClient } from '../../src/redis/client'

/** Deletes every key under `prefix`: how a test (or the bench) leaves Redis as it found it. */
export async function deletePrefixed(client: RedisClient, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (keys.length > 0) await client.del(keys)
}
