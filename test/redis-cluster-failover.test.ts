import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestApp, type TestApp } from './support/app'
import { waitFor } from './support/wait'

// A cluster of this test's own, three masters with a replica each, so that one master can be killed: the
// shared cluster of the other tests (and the machine's Redis) are never touched.
const PORTS = [7201, 7202, 7203, 7204, 7205, 7206]
const dir = mkdtempSync(join(tmpdir(), 'users-failover-'))
const servers = new Map<number, Bun.Subprocess>()

const redisCli = async (...args: string[]) => {
  const proc = Bun.spawn(['redis-cli', ...args], { stdout: 'pipe', stderr: 'pipe' })
  const out = await new Response(proc.stdout).text()
  await proc.exited
  return out.replaceAll('\r', '')
}
const info = async (port: number, section: string) => redisCli('-p', String(port), section === 'cluster' ? 'cluster' : 'info', section === 'cluster' ? 'info' : section)

// `<id> <host:port@bus> <flags> <master> … <slots>` per node, as CLUSTER NODES prints it.
async function nodes(port: number) {
  return (await redisCli('-p', String(port), 'cluster', 'nodes'))
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, , , , , , ...slots] = line.split(' ')
      return { id, port: Number(address!.split('@')[0]!.split(':')[1]), flags: flags!.split(','), slots }
    })
}

let t: TestApp
beforeAll(async () => {
  for (const port of PORTS) {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-node-timeout', '1000']
    args.push('--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no')
    servers.set(port, Bun.spawn(['redis-server', ...args], { stdout: 'ignore', stderr: 'ignore' }))
  }
  await waitFor(async () => (await Promise.all(PORTS.map((port) => redisCli('-p', String(port), 'ping')))).every((out) => out.trim() === 'PONG'), 'redis-servers up', 10_000)
  await redisCli('--cluster', 'create', ...PORTS.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes')
  // Every node agrees, and every replica has its master's data.
  await waitFor(async () => {
    for (const port of PORTS) {
      if (!(await info(port, 'cluster')).includes('cluster_state:ok')) return false
      const replication = await info(port, 'replication')
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false
    }
    return (await nodes(PORTS[0]!)).filter((node) => node.flags.includes('slave')).length === 3
  }, 'cluster with replicas ready', 30_000)
  t = await createTestApp({ label: 'failover', store: 'cluster', redisUrl: PORTS.map((port) => `redis://127.0.0.1:${port}`) })
}, 60_000)

afterAll(async () => {
  await t?.close().catch(() => {})
  for (const server of servers.values()) server.kill('SIGKILL')
  await Promise.all([...servers.values()].map((server) => server.exited))
  rmSync(dir, { recursive: true, force: true })
})

test('readiness asks every master: one that may evict is reported', async () => {
  const masters = (await nodes(PORTS[0]!)).filter((node) => node.flags.includes('master'))
  expect((await t.call('GET', '/health/ready')).body.checks.redis).toEqual({ status: 'up', masters: 3, maxmemory_policy: 'noeviction' })
  await redisCli('-p', String(masters[2]!.port), 'config', 'set', 'maxmemory-policy', 'allkeys-lru')
  try {
    expect((await t.call('GET', '/health/ready')).body.checks.redis).toMatchObject({ status: 'up', maxmemory_policy: 'allkeys-lru', warning: expect.stringContaining('noeviction') })
  } finally {
    await redisCli('-p', String(masters[2]!.port), 'config', 'set', 'maxmemory-policy', 'noeviction')
  }
})

test('a master killed while requests flow: 503 (fail closed) until its replica takes over, then the same sessions work without a restart', async () => {
  const user = await t.registerUser()
  const { sid } = JSON.parse(atob(user.access.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sid: string }
  // The master holding this user's sessions (the slot of the tag {userId}).
  const slot = Number((await redisCli('-p', String(PORTS[0]), 'cluster', 'keyslot', `{${user.id}}`)).trim())
  const inSlot = (range: string) => {
    const [from, to = from] = range.split('-').map(Number)
    return slot >= from! && slot <= to!
  }
  const master = (await nodes(PORTS[0]!)).find((node) => node.flags.includes('master') && node.slots.some(inSlot))!
  expect(master).toBeDefined()
  const me = () => t.call('GET', '/api/users/me/', { token: user.access })
  expect((await me()).status).toBe(200)

  const statuses: number[] = []
  let flowing = true
  const flow = (async () => {
    while (flowing) {
      statuses.push((await me()).status)
      await Bun.sleep(20)
    }
  })()
  await waitFor(() => statuses.length >= 5, 'requests flowing', 5_000)

  servers.get(master.port)!.kill('SIGKILL')
  await servers.get(master.port)!.exited
  const killedAt = performance.now()
  // Fail closed first: the session cannot be checked, so it is not accepted.
  await waitFor(() => statuses.includes(503), 'a 503 while the master is gone', 10_000)
  // A replica takes at least cluster-node-timeout (1 s) to be promoted: readiness still sees the gap.
  const duringGap = await t.call('GET', '/health/ready')
  expect(duringGap.status).toBe(503)
  expect(duringGap.body.checks.redis).toEqual({ status: 'down', error: '1 of 3 Redis masters did not answer' })
  // Then the replica is promoted (cluster-node-timeout 1 s), the client learns the new owner, and the same token works.
  await waitFor(() => statuses.slice(-5).length === 5 && statuses.slice(-5).every((status) => status === 200), 'recovery after failover', 30_000)
  const recoveredMs = performance.now() - killedAt
  flowing = false
  await flow

  // Nothing but a session accepted or a 503: never a 401 (a session lost) or a 500.
  expect([...new Set(statuses)].sort()).toEqual([200, 503])
  const promoted = (await nodes(PORTS.find((port) => port !== master.port)!)).find((node) => node.flags.includes('master') && !node.flags.includes('fail') && node.slots.some(inSlot))!
  expect(promoted.port).not.toBe(master.port)
  // The session came over with the replica: refresh, the session list and logging out work on the new master.
  const refreshed = await t.call('POST', '/api/users/refresh/', { body: { refresh: user.refresh } })
  expect(refreshed.status).toBe(200)
  const sessions = await t.call('GET', '/api/users/sessions/', { token: refreshed.body.access })
  expect(sessions.body.map((session: { id: string }) => session.id)).toEqual([sid])
  const ready = await t.call('GET', '/health/ready')
  expect(ready.status).toBe(200)
  expect(ready.body.checks.redis).toMatchObject({ status: 'up', masters: 3 })
  console.log(`failover: ${statuses.filter((status) => status === 503).length} of ${statuses.length} requests answered 503; recovered ${Math.round(recoveredMs)} ms after the kill`)
}, 90_000)
