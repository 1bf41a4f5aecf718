import type { TokenPair } from './tokens'
import { UnavailableError } from '../errors'

export type CreateSessionInput = {
  sid: string
  userId: string
  refreshJti: string
  ttlSeconds: number
  ip: string | null
  userAgent: string | null
  now: number
}

export type RotateInput = {
  userId: string
  sid: string
  presentedJti: string
  next: { refreshJti: string; pair: TokenPair }
  graceSeconds: number
  ttlSeconds: number
  /** The session's absolute lifetime from its creation: past it, rotation ends the session; before it, the TTL never reaches beyond it. */
  maxAgeSeconds: number
  now: number
}

export type RotateResult =
  { kind: 'rotated' } | { kind: 'grace'; pair: TokenPair } | { kind: 'reused' } | { kind: 'ended' }

/** What a user sees about one of their sessions; times are epoch milliseconds. */
export type SessionInfo = {
  sid: string
  createdAt: number
  lastUsedAt: number
  ip: string | null
  userAgent: string | null
}

/**
 * Token families: one per login, revoked by deleting it, checked on every request. A session is named by its
 * user and its id together (every token carries both), so a store can keep one user's sessions side by side
 * (on Redis Cluster: in one hash slot); a sid under another user is not found.
 */
export interface SessionStore {
  create(input: CreateSessionInput): Promise<void>
  isActive(userId: string, sid: string): Promise<boolean>
  rotate(input: RotateInput): Promise<RotateResult>
  /** Ends the user's session `sid`; false when the user has no such live session. */
  end(userId: string, sid: string): Promise<boolean>
  endAllForUser(userId: string, options?: { except?: string }): Promise<number>
  list(userId: string): Promise<SessionInfo[]>
}

/** The backing store could not be reached: the request fails whole, and the client may retry. */
export class StoreUnavailableError extends UnavailableError {
  constructor(cause: unknown) {
    super('session store', cause)
  }
}

// The User-Agent header is client-controlled; cap it so a session cannot be used to store arbitrary blobs.
const MAX_USER_AGENT_LENGTH = 512
const MAX_IP_LENGTH = 64

/** Normalises client-supplied metadata: empty becomes null, long values are truncated. */
export function sanitizeMetadata(ip: string | null, userAgent: string | null) {
  return {
    ip: ip ? ip.slice(0, MAX_IP_LENGTH) : null,
    userAgent: userAgent ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : null,
  }
}
