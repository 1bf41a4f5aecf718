import type { TokenPair } from './tokens'
import type { Clock } from '../clock'
import {
  sanitizeMetadata,
  type CreateSessionInput,
  type RotateInput,
  type RotateResult,
  type SessionStore,
} from './store'

type Session = {
  userId: string
  jti: string
  prevJti: string | null
  rotatedAt: number
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  ip: string | null
  userAgent: string | null
  successor: TokenPair | null
}

const SWEEP_INTERVAL_MS = 60_000

/** In-process {@link SessionStore} for a single instance; expiry follows the injected clock. */
export function createMemorySessionStore(options: { clock: Clock }): SessionStore {
  const { clock } = options
  const sessions = new Map<string, Session>()
  const byUser = new Map<string, Set<string>>()
  let lastSweep = clock.now()

  function live(sid: string): Session | undefined {
    const session = sessions.get(sid)
    if (session && session.expiresAt > clock.now()) return session
    if (session) remove(sid, session)
    return undefined
  }

  function remove(sid: string, session: Session) {
    sessions.delete(sid)
    const sids = byUser.get(session.userId)
    sids?.delete(sid)
    if (sids?.size === 0) byUser.delete(session.userId)
  }

  // Sessions nobody asks about again would otherwise stay in memory forever.
  function sweepIfDue(now: number) {
    if (now - lastSweep < SWEEP_INTERVAL_MS) return
    lastSweep = now
    for (const [sid, session] of sessions) {
      if (session.expiresAt <= now) remove(sid, session)
    }
  }

  function liveSessions(userId: string): Array<[string, Session]> {
    return [...(byUser.get(userId) ?? [])].flatMap((sid) => {
      const session = live(sid)
      return session ? [[sid, session] as [string, Session]] : []
    })
  }

  return {
    async create(input: CreateSessionInput) {
      sweepIfDue(input.now)
      const existing = sessions.get(input.sid)
      if (existing) remove(input.sid, existing)
      sessions.set(input.sid, {
        userId: input.userId,
        jti: input.refreshJti,
        prevJti: null,
        rotatedAt: input.now,
        createdAt: input.now,
        lastUsedAt: input.now,
        expiresAt: input.now + input.ttlSeconds * 1000,
        ...sanitizeMetadata(input.ip, input.userAgent),
        successor: null,
      })
      const sids = byUser.get(input.userId) ?? new Set<string>()
      byUser.set(input.userId, sids.add(input.sid))
    },

    async isActive(userId: string, sid: string) {
      return live(sid)?.userId === userId
    },

    // Runs without awaiting, so it is atomic with respect to every other call on this store.
    async rotate(input: RotateInput): Promise<RotateResult> {
      const session = live(input.sid)
      if (session?.userId !== input.userId) return { kind: 'ended' }
      const endsAt = session.createdAt + input.maxAgeSeconds * 1000
      if (input.now >= endsAt) {
        remove(input.sid, session)
        return { kind: 'ended' }
      }
      const graceMs = input.graceSeconds * 1000
      const inGrace = input.now - session.rotatedAt <= graceMs
      if (!inGrace) session.successor = null
      if (input.presentedJti === session.jti) {
        Object.assign(session, {
          jti: input.next.refreshJti,
          prevJti: input.presentedJti,
          rotatedAt: input.now,
          lastUsedAt: input.now,
          expiresAt: Math.min(input.now + input.ttlSeconds * 1000, endsAt),
          successor: graceMs > 0 ? input.next.pair : null,
        })
        return { kind: 'rotated' }
      }
      if (input.presentedJti === session.prevJti && inGrace && session.successor) {
        return { kind: 'grace', pair: session.successor }
      }
      remove(input.sid, session)
      return { kind: 'reused' }
    },

    async end(userId: string, sid: string) {
      const session = live(sid)
      if (session?.userId !== userId) return false
      remove(sid, session)
      return true
    },

    async endAllForUser(userId: string, options?: { except?: string }) {
      const doomed = liveSessions(userId).filter(([sid]) => sid !== options?.except)
      for (const [sid, session] of doomed) remove(sid, session)
      return doomed.length
    },

    async list(userId: string) {
      return liveSessions(userId)
        .map(([sid, { createdAt, lastUsedAt, ip, userAgent }]) => ({ sid, createdAt, lastUsedAt, ip, userAgent }))
        .sort((a, b) => a.createdAt - b.createdAt)
    },
  }
}
