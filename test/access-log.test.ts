import { afterAll, expect, test } from 'bun:test'
import { createTestDatabase, TEST_SECRET } from './support/app'
import { freePort, spawnMain, waitForPort } from './support/process'

let cleanup = async () => {}
afterAll(() => cleanup())

test('lines logged together in one turn reach stdout whole, in order, one JSON line each, up to the last before exit', async () => {
  const database = await createTestDatabase('access_log')
  const port = freePort()
  const child = spawnMain(['serve'], { DATABASE_URL: database.url, SECRET_KEY: TEST_SECRET, PORT: String(port), LOG_LEVEL: 'info' })
  cleanup = async () => {
    child.kill('SIGKILL')
    await child.exited
    await database.drop()
  }
  const stdout = new Response(child.stdout).text()
  await waitForPort(port)
  const ids = Array.from({ length: 300 }, (_, i) => `batch-${i}`)
  // Many requests at once: their access lines are logged in the same turns of the event loop.
  await Promise.all(ids.map((id) => fetch(`http://127.0.0.1:${port}/health/live`, { headers: { 'x-request-id': id } })))
  child.kill('SIGTERM')
  expect(await child.exited).toBe(0)
  const lines = (await stdout).trim().split('\n').map((line) => JSON.parse(line) as { msg: string; req_id?: string })
  const logged = lines.filter((line) => line.msg === 'request' && line.req_id?.startsWith('batch-')).map((line) => line.req_id)
  expect(logged.toSorted()).toEqual(ids.toSorted())
  // The shutdown lines come after every access line.
  expect(lines.findLastIndex((line) => line.msg === 'request')).toBeLessThan(lines.length - 1)
}, 30_000)
