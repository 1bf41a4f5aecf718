import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './wait'

export const MAIN = join(import.meta.dir, '../../src/main.ts')

/** A port nobody listens on right now. */
export function freePort() {
  const server = Bun.serve({ port: 0, fetch: () => new Response() })
  const { port } = server
  server.stop(true)
  return port!
}

/** Runs the service's entry point as a child process with only the given environment (and a data folder of its own). */
export function spawnMain(args: string[], env: Record<string, string>) {
  // Without one, the service would write its mail (.eml files) into the repository's ./data.
  const DATA_DIR = env.DATA_DIR ?? mkdtempSync(join(tmpdir(), 'users-main-'))
  return Bun.spawn(['bun', MAIN, ...args], {
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', ...env, DATA_DIR },
    stdout: 'pipe',
    stderr: 'pipe',
  })
}

/** Polls until the service answers on `port`, or fails after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 60_000) {
  const answers = () => fetch(`http://127.0.0.1:${port}/api/users/me/`).then(() => true, () => false)
  await waitFor(answers, `the service to answer on port ${port}`, timeoutMs, 100)
}
