import { createHash } from 'node:crypto'
import type { RedisClient } from '../redis/client'
import { StoreUnavailableError } from './store'

/** A Lua script addressed by its SHA1 so only the hash travels on the hot path. */
export type LuaScript = { source: string; sha: string }

/** Prepares a Lua script for {@link runScript}. */
export function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/** Runs a script with EVALSHA, loading it with EVAL when the server does not know it (e.g. after a restart). */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: string[],
  args: Array<string | number>,
): Promise<unknown> {
  const options = { keys, arguments: args.map(String) }
  return redisCall(async () => {
    try {
      return await client.evalSha(script.sha, options)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return client.eval(script.source, options)
    }
  })
}

/** Runs a Redis command, turning any failure into {@link StoreUnavailableError}. */
export async function redisCall<T>(command: () => Promise<T>): Promise<T> {
  try {
    return await command()
  } catch (err) {
    throw new StoreUnavailableError(err)
  }
}
