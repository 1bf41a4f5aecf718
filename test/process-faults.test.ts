import { afterAll, expect, test } from 'bun:test'
import { createTestDatabase, TEST_SECRET } from './support/app'
import { freePort, spawnMain, waitForPort } from './support/process'
import { waitFor } from './support/wait'

const cleanups: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startService(label: string, env: Record<string, string> = {}) {
  const database = await createTestDatabase(label)
  const port = freePort()
  const child = spawnMain(['serve'], { DATABASE_URL: database.url, SECRET_KEY: TEST_SECRET, PORT: String(port), LOG_LEVEL: 'info', ...env })
  cleanups.push(async () => {
    child.kill('SIGKILL')
    await child.exited
    await database.drop()
  })
  return { child, port, database }
}

/** Every stdout line as it arrives, with the time it arrived. */
function lines(stream: ReadableStream<Uint8Array>) {
  const seen: { line: string; at: number }[] = []
  const done = (async () => {
    let rest = ''
    const decoder = new TextDecoder()
    for await (const chunk of stream) {
      const parts = (rest + decoder.decode(chunk, { stream: true })).split('\n')
      rest = parts.pop()!
      for (const line of parts) seen.push({ line, at: performance.now() })
    }
    if (rest) seen.push({ line: rest, at: performance.now() })
  })()
  return { seen, done }
}

test('with stdout a pipe, log lines arrive within a second, and every line is JSON', async () => {
  const { child, port } = await startService('logs')
  const stdout = lines(child.stdout)
  await waitForPort(port)
  const answeredAt = performance.now()
  const listening = () => stdout.seen.find(({ line }) => line.includes('users service listening'))
  await waitFor(listening, 'the listening line', 5_000, 20)
  // The line is written before the port answers; a buffered log held it until ~35 requests filled 4 KB.
  expect(listening()).toBeDefined()
  expect(listening()!.at - answeredAt).toBeLessThan(1_500)

  // The wildcard route made Elysia print a 14-line non-JSON warning on its first request.
  expect((await fetch(`http://127.0.0.1:${port}/api/users/media/profile-pics/nothing.png`)).status).toBe(404)
  child.kill('SIGTERM')
  expect(await child.exited).toBe(0)
  await stdout.done
  expect(stdout.seen.length).toBeGreaterThan(3)
  for (const { line } of stdout.seen) expect(() => JSON.parse(line)).not.toThrow()
  expect(await new Response(child.stderr).text()).toBe('')
}, 30_000)

test('a second instance on a taken port fails at start-up with one clear line', async () => {
  const first = await startService('port_first')
  await waitForPort(first.port)
  const second = spawnMain(['serve'], { DATABASE_URL: first.database.url, SECRET_KEY: TEST_SECRET, PORT: String(first.port) })
  cleanups.push(async () => second.kill('SIGKILL'))
  expect(await second.exited).toBe(1)
  const output = (await new Response(second.stdout).text()) + (await new Response(second.stderr).text())
  const said = output.trim().split('\n').filter((line) => line.includes(String(first.port)))
  expect(said).toHaveLength(1)
  expect(JSON.parse(said[0]!).msg).toBe(`cannot listen on 0.0.0.0:${first.port}: the port is already in use`)
  // The first instance keeps the port, and it alone answers.
  expect((await fetch(`http://127.0.0.1:${first.port}/health/live`)).status).toBe(200)
}, 30_000)

test('SIGTERM closes an idle keep-alive connection at once and still finishes an in-flight request', async () => {
  // A costly hash makes login the slow in-flight request (about two seconds here).
  const { child, port } = await startService('keepalive', { ARGON2_MEMORY_KIB: String(256 * 1024), ARGON2_TIME_COST: '4' })
  await waitForPort(port)
  const base = `http://127.0.0.1:${port}/api/users`
  const credentials = { email: 'idle@example.com', password: 'a-long-unusual-passphrase' }
  const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  expect((await post('/register/', { ...credentials, full_name: 'Idle' })).status).toBe(200)

  // A browser's connections: one that was answered and left open, and one opened ahead of need
  // (browsers preconnect) that has sent nothing yet.
  let answered = ''
  const socket = { data: (_: unknown, chunk: Buffer) => void (answered += chunk.toString()), close: () => {} }
  const used = await Bun.connect({ hostname: '127.0.0.1', port, socket })
  await Bun.connect({ hostname: '127.0.0.1', port, socket })
  used.write(`GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`)
  await waitFor(() => answered.includes('"ok"'), 'the kept-alive answer')

  const inFlight = post('/login/', credentials)
  await Bun.sleep(150)
  const signalledAt = performance.now()
  child.kill('SIGTERM')
  expect((await inFlight).status).toBe(200)
  const answeredAt = performance.now()
  expect(await child.exited).toBe(0)
  const exitedAt = performance.now()
  console.info(`SIGTERM → in-flight answered after ${Math.round(answeredAt - signalledAt)} ms, exit ${Math.round(exitedAt - answeredAt)} ms later`)
  // The exit must not wait for the idle connections' idle timeout (11-15 s was measured in the field;
  // this Bun closes these two on stop() too, so this guards the behaviour rather than reproducing it).
  expect(exitedAt - answeredAt).toBeLessThan(2_000)
}, 60_000)
