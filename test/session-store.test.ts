import { beforeEach, describe, expect, test } from 'bun:test'
import { randomUUID } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import type { TokenPair } from '../src/sessions/tokens'
import { manualClock } from '../src/clock'
import { createMemorySessionStore } from '../src/sessions/memory-store'
import { connectRedis } from '../src/redis/client'
import { clientsOfEveryKind, REDIS_KINDS } from './support/redis'
import { createRedisSessionStore, sessionKeys } from '../src/sessions/redis-store'
import { StoreUnavailableError, type SessionStore } from '../src/sessions/store'

const prefix = `test:sessions:${randomUUID()}:`
const GRACE_SECONDS = 10
const TTL_SECONDS = 3600
const MAX_AGE_SECONDS = 30 * 86400

// The machine's standalone Redis and the local cluster, each running every case below.
const clients = clientsOfEveryKind(prefix)

type Harness = {
  store: SessionStore
  clock: ReturnType<typeof manualClock>
  /** Lets time pass for TTL expiry, which Redis measures in real time. */
  elapse(ms: number): Promise<void>
}

const harnesses: Array<[string, () => Harness]> = [
  [
    'memory',
    () => {
      const clock = manualClock()
      return { clock, store: createMemorySessionStore({ clock }), elapse: async (ms) => clock.advance(ms) }
    },
  ],
  ...REDIS_KINDS.map((kind): [string, () => Harness] => [
    kind,
    () => {
      const clock = manualClock()
      const elapse = async (ms: number) => {
        clock.advance(ms)
        await Bun.sleep(ms)
      }
      return { clock, store: createRedisSessionStore({ client: clients[kind], prefix }), elapse }
    },
  ]),
]

const pairOf = (n: number | string): TokenPair => ({ refresh: `refresh-${n}`, access: `access-${n}` })

describe.each(harnesses)('%s session store', (_name, make) => {
  let h: Harness
  beforeEach(() => {
    h = make()
  })
  // Every session is named by its user and its id, as a token names it.
  const owners = new Map<string, string>()
  const userOf = (sid: string) => owners.get(sid) ?? randomUUID()
  const isActive = (sid: string) => h.store.isActive(userOf(sid), sid)
  const end = (sid: string) => h.store.end(userOf(sid), sid)

  async function start(userId = randomUUID(), ttlSeconds = TTL_SECONDS) {
    const sid = randomUUID()
    await h.store.create({
      sid,
      userId,
      refreshJti: 'j0',
      ttlSeconds,
      ip: '203.0.113.7',
      userAgent: 'test-agent',
      now: h.clock.now(),
    })
    owners.set(sid, userId)
    return sid
  }

  function rotate(sid: string, presentedJti: string, n: number | string, maxAgeSeconds = MAX_AGE_SECONDS) {
    return h.store.rotate({
      userId: userOf(sid),
      sid,
      presentedJti,
      next: { refreshJti: `j${n}`, pair: pairOf(n) },
      graceSeconds: GRACE_SECONDS,
      ttlSeconds: TTL_SECONDS,
      maxAgeSeconds,
      now: h.clock.now(),
    })
  }

  test('create makes the session active under its user only', async () => {
    const userId = randomUUID()
    const sid = await start(userId)
    expect(await h.store.isActive(userId, sid)).toBe(true)
    expect(await h.store.isActive(userId, randomUUID())).toBe(false)
    // Another user cannot check, rotate or end it by its id.
    const stranger = randomUUID()
    expect(await h.store.isActive(stranger, sid)).toBe(false)
    expect(await h.store.end(stranger, sid)).toBe(false)
    expect(await h.store.isActive(userId, sid)).toBe(true)
  })

  test('the rotated-away token within grace gets the identical successor pair', async () => {
    const sid = await start()
    expect(await rotate(sid, 'j0', 1)).toEqual({ kind: 'rotated' })
    h.clock.advance(5_000)
    expect(await rotate(sid, 'j0', 2)).toEqual({ kind: 'grace', pair: pairOf(1) })
    expect(await isActive(sid)).toBe(true)
    expect(await rotate(sid, 'j1', 3)).toEqual({ kind: 'rotated' })
  })

  test('the rotated-away token after grace is theft and ends the session', async () => {
    const sid = await start()
    await rotate(sid, 'j0', 1)
    h.clock.advance(GRACE_SECONDS * 1000 + 1)
    expect(await rotate(sid, 'j0', 2)).toEqual({ kind: 'reused' })
    expect(await isActive(sid)).toBe(false)
    expect(await rotate(sid, 'j1', 3)).toEqual({ kind: 'ended' })
  })

  test('a token older than the previous one is theft even within grace', async () => {
    const sid = await start()
    await rotate(sid, 'j0', 1)
    await rotate(sid, 'j1', 2)
    expect(await rotate(sid, 'j0', 3)).toEqual({ kind: 'reused' })
    expect(await isActive(sid)).toBe(false)
  })

  test('concurrent rotations of one token mint exactly one successor', async () => {
    const sid = await start()
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => rotate(sid, 'j0', `c${i}`)))
    const winners = results.flatMap((r, i) => (r.kind === 'rotated' ? [i] : []))
    expect(winners).toHaveLength(1)
    const winnerPair = pairOf(`c${winners[0]}`)
    const losers = results.filter((r) => r.kind !== 'rotated')
    expect(losers).toHaveLength(9)
    for (const loser of losers) expect(loser).toEqual({ kind: 'grace', pair: winnerPair })
    expect(await rotate(sid, `jc${winners[0]}`, 'after')).toEqual({ kind: 'rotated' })
  })

  test('end revokes once', async () => {
    const sid = await start()
    expect(await end(sid)).toBe(true)
    expect(await isActive(sid)).toBe(false)
    expect(await end(sid)).toBe(false)
    expect(await rotate(sid, 'j0', 1)).toEqual({ kind: 'ended' })
  })

  test('endAllForUser spares the excepted session and other users', async () => {
    const userId = randomUUID()
    const [keep, a, b] = [await start(userId), await start(userId), await start(userId)]
    const stranger = await start()
    expect(await h.store.endAllForUser(userId, { except: keep })).toBe(2)
    expect(await isActive(keep)).toBe(true)
    expect(await isActive(a)).toBe(false)
    expect(await isActive(b)).toBe(false)
    expect(await isActive(stranger)).toBe(true)
    expect(await h.store.endAllForUser(userId)).toBe(1)
    expect(await isActive(keep)).toBe(false)
  })

  test('list shows live sessions with metadata and drops ended ones', async () => {
    const userId = randomUUID()
    const createdAt = h.clock.now()
    const first = await start(userId)
    h.clock.advance(1_000)
    const second = await start(userId)
    h.clock.advance(1_000)
    await rotate(first, 'j0', 1)

    expect(await h.store.list(userId)).toEqual([
      { sid: first, createdAt, lastUsedAt: createdAt + 2_000, ip: '203.0.113.7', userAgent: 'test-agent' },
      {
        sid: second,
        createdAt: createdAt + 1_000,
        lastUsedAt: createdAt + 1_000,
        ip: '203.0.113.7',
        userAgent: 'test-agent',
      },
    ])
    await end(first)
    expect((await h.store.list(userId)).map((s) => s.sid)).toEqual([second])
  })

  test('metadata is optional and bounded', async () => {
    const userId = randomUUID()
    const sid = randomUUID()
    const userAgent = 'x'.repeat(10_000)
    await h.store.create({ sid, userId, refreshJti: 'j0', ttlSeconds: 60, ip: null, userAgent, now: h.clock.now() })
    const [info] = await h.store.list(userId)
    expect(info?.ip).toBeNull()
    expect(info?.userAgent).toHaveLength(512)
  })

  test('a session that keeps rotating still ends at its absolute lifetime', async () => {
    const userId = randomUUID()
    const sid = await start(userId)
    const maxAge = 100
    for (let n = 1; n <= 4; n++) {
      h.clock.advance(20_000)
      expect(await rotate(sid, `j${n - 1}`, n, maxAge)).toEqual({ kind: 'rotated' })
    }
    h.clock.advance(20_000)
    expect(await rotate(sid, 'j4', 5, maxAge)).toEqual({ kind: 'ended' })
    expect(await isActive(sid)).toBe(false)
    expect(await h.store.list(userId)).toEqual([])
  })

  test('rotation never keeps a session alive past its absolute end', async () => {
    const sid = await start(randomUUID())
    h.clock.advance(1_000)
    // Three seconds of life left, though a rotation would otherwise grant an hour.
    expect(await rotate(sid, 'j0', 1, 4)).toEqual({ kind: 'rotated' })
    await h.elapse(3_100)
    expect(await isActive(sid)).toBe(false)
  })

  test('expired sessions are inactive and vanish from list', async () => {
    const userId = randomUUID()
    const shortLived = await start(userId, 1)
    const longLived = await start(userId)
    await h.elapse(1_100)
    expect(await isActive(shortLived)).toBe(false)
    expect((await h.store.list(userId)).map((s) => s.sid)).toEqual([longLived])
  })
})

// The store's key layout: on a cluster a user's keys share the hash tag `{<userId>}`, so one slot.
const keysOf = (hashTagged: boolean) => {
  const names = sessionKeys(prefix, hashTagged)
  return (userId: string, sid: string) => ({
    session: names.sessionKey(userId, sid),
    successor: names.successorKey(userId, sid),
    index: names.indexKey(userId),
  })
}

test('a single Redis keeps the key names of earlier releases, so an upgrade keeps live sessions', () => {
  expect(keysOf(false)('u1', 's1')).toEqual({ session: `${prefix}session:s1`, successor: `${prefix}session:s1:successor`, index: `${prefix}user-sessions:u1` })
  expect(keysOf(true)('u1', 's1')).toEqual({ session: `${prefix}{u1}:session:s1`, successor: `${prefix}{u1}:session:s1:successor`, index: `${prefix}{u1}:sessions` })
})

describe.each(REDIS_KINDS)('%s session keys', (kind) => {
  const store = () => createRedisSessionStore({ client: clients[kind], prefix })
  const client = () => clients[kind]
  const keys = keysOf(kind === 'cluster')

  test('every key carries a TTL', async () => {
    const sid = randomUUID()
    const userId = randomUUID()
    const now = Date.now()
    await store().create({ sid, userId, refreshJti: 'j0', ttlSeconds: 600, ip: null, userAgent: null, now })
    await store().rotate({
      userId,
      sid,
      presentedJti: 'j0',
      next: { refreshJti: 'j1', pair: pairOf(1) },
      graceSeconds: 5,
      ttlSeconds: 900,
      maxAgeSeconds: MAX_AGE_SECONDS,
      now,
    })
    const session = await client().ttl(keys(userId, sid).session)
    const index = await client().ttl(keys(userId, sid).index)
    const successor = await client().pTTL(keys(userId, sid).successor)
    expect(session).toBeGreaterThan(600)
    expect(session).toBeLessThanOrEqual(900)
    expect(index).toBeGreaterThan(600)
    expect(successor).toBeGreaterThan(0)
    expect(successor).toBeLessThanOrEqual(5_000)
  })

  test("a user's keys share one hash slot, and different users spread over the slots", async () => {
    const userId = randomUUID()
    const sid = randomUUID()
    await store().create({ sid, userId, refreshJti: 'j0', ttlSeconds: 600, ip: null, userAgent: null, now: Date.now() })
    const { session, successor, index } = keysOf(true)(userId, sid)
    const slot = (key: string) => clients.cluster.clusterKeySlot(key)
    expect(new Set(await Promise.all([slot(session), slot(successor), slot(index)])).size).toBe(1)
    const slots = await Promise.all(Array.from({ length: 20 }, () => slot(keysOf(true)(randomUUID(), sid).session)))
    expect(new Set(slots).size).toBeGreaterThan(10)
  })

  test('rotation restores an evicted user index so ending all sessions still finds it', async () => {
    const sid = randomUUID()
    const userId = randomUUID()
    const now = Date.now()
    await store().create({ sid, userId, refreshJti: 'j0', ttlSeconds: 600, ip: null, userAgent: null, now })
    await client().del(keys(userId, sid).index)
    const next = { refreshJti: 'j1', pair: pairOf(1) }
    await store().rotate({ userId, sid, presentedJti: 'j0', next, graceSeconds: 5, ttlSeconds: 600, maxAgeSeconds: MAX_AGE_SECONDS, now })
    expect(await store().endAllForUser(userId)).toBe(1)
    expect(await store().isActive(userId, sid)).toBe(false)
  })

  test('index members whose session key expired are pruned', async () => {
    const userId = randomUUID()
    const sids = [randomUUID(), randomUUID()]
    for (const sid of sids) {
      await store().create({
        sid,
        userId,
        refreshJti: 'j0',
        ttlSeconds: 600,
        ip: null,
        userAgent: null,
        now: Date.now(),
      })
    }
    await client().del(keys(userId, sids[0]!).session)
    expect((await store().list(userId)).map((s) => s.sid)).toEqual([sids[1]!])
    expect(await client().sMembers(keys(userId, sids[0]!).index)).toEqual([sids[1]!])
  })

  test('a new session checks a bounded sample of the index, however many ended sessions it holds', async () => {
    const userId = randomUUID()
    const index = keys(userId, '').index
    await client().sAdd(index, Array.from({ length: 1_000 }, () => randomUUID()))
    await client().expire(index, 600)
    const sid = randomUUID()
    await store().create({ sid, userId, refreshJti: 'j0', ttlSeconds: 600, ip: null, userAgent: null, now: Date.now() })
    const size = await client().sCard(index)
    expect(size).toBeGreaterThanOrEqual(1_001 - 16)
    expect(size).toBeLessThan(1_001)
    expect(await client().sIsMember(index, sid)).toBe(1)
    expect((await store().list(userId)).map((session) => session.sid)).toEqual([sid])
    expect(await client().sCard(index)).toBe(1)
  })
})

describe('redis outage', () => {
  async function freePort(): Promise<number> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    await new Promise((resolve) => server.close(resolve))
    return port
  }

  async function startRedis(port: number) {
    const proc = Bun.spawn(
      ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdout: 'ignore', stderr: 'ignore' },
    )
    for (let attempt = 0; attempt < 100; attempt++) {
      const listening = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then(
        (socket) => (socket.end(), true),
        () => false,
      )
      if (listening) return proc
      await Bun.sleep(50)
    }
    proc.kill()
    throw new Error(`redis-server did not start on ${port}`)
  }

  async function timeToFailure(call: () => Promise<unknown>) {
    const started = performance.now()
    const error = await call().then(
      () => null,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(StoreUnavailableError)
    return performance.now() - started
  }

  test('fails fast while down and recovers by itself', async () => {
    const port = await freePort()
    let server = await startRedis(port)
    const warnings: object[] = []
    const logger = { info() {}, warn: (obj: object) => void warnings.push(obj) }
    const throwaway = await connectRedis(`redis://127.0.0.1:${port}`, logger)
    try {
      const store = createRedisSessionStore({ client: throwaway, prefix })
      expect(await store.isActive('u', 'missing')).toBe(false)

      server.kill()
      await server.exited
      // The first call may race the client noticing the closed socket; the client's command timeout bounds it.
      expect(await timeToFailure(() => store.isActive('u', 'missing'))).toBeLessThan(1_000)
      // Once the drop is known, calls are refused without waiting on the network.
      for (let i = 0; i < 5; i++) expect(await timeToFailure(() => store.isActive('u', 'missing'))).toBeLessThan(50)
      await timeToFailure(() => store.end('u', 'missing'))

      server = await startRedis(port)
      const deadline = Date.now() + 5_000
      while (
        !(await store.isActive('u', 'missing').then(
          () => true,
          () => false,
        ))
      ) {
        expect(Date.now()).toBeLessThan(deadline)
        await Bun.sleep(100)
      }
      const sid = randomUUID()
      await store.create({
        sid,
        userId: 'u',
        refreshJti: 'j0',
        ttlSeconds: 60,
        ip: null,
        userAgent: null,
        now: Date.now(),
      })
      expect(await store.isActive('u', sid)).toBe(true)
      expect(warnings.length).toBeGreaterThan(0)
    } finally {
      throwaway.destroy()
      server.kill()
      await server.exited
    }
  }, 15_000)
})
