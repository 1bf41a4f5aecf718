import { browserGlobal } from './globals'
import { failed, ok, type ClientError, type Result } from './result'
import type { TokenStorage } from './storage'
import type { Tabs } from './tabs'
import type { TokenPair } from './types'

/** The Web Locks API's two methods the client needs (`navigator.locks`). */
export type Locks = {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
  query(): Promise<{ held?: { name?: string }[] }>
}

// How long a tab that finds its pair rotated by another tab waits for that tab's message with the new one.
const ROTATED_PAIR_WAIT_MS = 3000
// How long a rotation stays marked: the server's refresh grace, after which a late refresh of the old pair is
// reuse anyway. A tab that waits for the refresh lock waits for one refresh, far less.
const ROTATION_MARK_MS = 10_000

/** What the service answers a call without a session; the client answers the same without asking. */
export const NOT_SIGNED_IN: ClientError = { kind: 'http', status: 401, code: 'not_authenticated', detail: 'Not signed in.', body: undefined }

export const browserLocks = (): Locks | undefined => browserGlobal<{ locks?: Locks }>('navigator')?.locks

/**
 * Refreshes a stale pair once, however many requests and tabs find it stale together: within a tab, callers
 * share the refresh in flight; across tabs, the one holding the Web Lock refreshes and the others, taking the
 * lock after it, find the pair already rotated and adopt the new one. Where Web Locks are missing, a tab
 * announces its refresh on the channel and the others wait for its result.
 */
export function singleFlightRefresh({
  storage,
  tabs,
  locks,
  lockName,
  send,
  rotated,
  ended,
}: {
  storage: TokenStorage
  tabs: Tabs
  locks: Locks | undefined
  lockName: string
  send: (refresh: string) => Promise<Result<TokenPair>>
  /** The new pair is stored; tell the tab and the others. */
  rotated: (pair: TokenPair) => void
  /** The service refused the refresh token: the session is over. */
  ended: () => void
}) {
  let refreshing: Promise<Result<TokenPair>> | null = null

  async function rotateHoldingLock(locks: Locks, stale: TokenPair): Promise<Result<TokenPair>> {
    const marks = rotationMarks(locks, lockName)
    // Another tab rotated this pair while this one waited for the lock: its message carries the new pair.
    if (storage.get()?.refresh === stale.refresh && (await marks.rotated(stale.refresh))) await tabs.replaced(stale.refresh, ROTATED_PAIR_WAIT_MS)
    if (storage.get()?.refresh !== stale.refresh) return current()
    return exchange(stale, () => marks.mark(stale.refresh))
  }

  async function rotateAnnouncing(stale: TokenPair): Promise<Result<TokenPair>> {
    const peer = tabs.peerRefreshing(stale.access)
    if (peer) await peer
    // Another request or tab already replaced, or ended, this pair.
    if (storage.get()?.refresh !== stale.refresh) return current()
    tabs.announceRefresh(stale.access)
    return exchange(stale)
  }

  async function exchange(stale: TokenPair, markRotated = async () => {}): Promise<Result<TokenPair>> {
    const result = await send(stale.refresh)
    // A login or logout while the refresh was under way is newer than its result.
    if (storage.get()?.refresh !== stale.refresh) return current()
    if (result.ok) {
      await markRotated()
      rotated(result.data)
    } else if (result.error.kind === 'http' && result.error.status === 401) ended()
    // Any other failure (network, 503, timeout) is transient: the pair is kept for the next attempt.
    return result
  }

  /** The pair another request or tab put in place, or the 401 a call without one gets. */
  const current = () => {
    const pair = storage.get()
    return pair ? ok(pair) : failed(NOT_SIGNED_IN)
  }

  /** The pair that replaces `stale`, or why none could be had. */
  return (stale: TokenPair): Promise<Result<TokenPair>> => {
    refreshing ??= (locks ? locks.request(lockName, () => rotateHoldingLock(locks, stale)) : rotateAnnouncing(stale)).finally(() => {
      refreshing = null
    })
    return refreshing
  }
}

/**
 * Which refresh tokens were rotated lately, kept in the lock manager itself: after a rotation the tab holds a
 * lock named after the old token (a 32-bit hash of it, which tells nothing about it) for a while, taken before
 * it lets go of the refresh lock. A tab granted the refresh lock next sees it in `query()`, whatever the order
 * in which the lock and the channel's message with the new pair reach it. (A note in localStorage was tried
 * first: Chromium hands another tab's write to a tab in another process later, and two refreshes slipped through.)
 */
function rotationMarks(locks: Locks, lockName: string) {
  const nameOf = (refresh: string) => `${lockName}.rotated.${fingerprint(refresh)}`
  return {
    /** Resolves once the mark is held; it is let go of after ROTATION_MARK_MS. */
    mark: (refresh: string) =>
      new Promise<void>((marked) => {
        void locks.request(nameOf(refresh), () => {
          marked()
          return new Promise<void>((release) => setTimeout(release, ROTATION_MARK_MS))
        })
      }),
    async rotated(refresh: string) {
      const { held = [] } = await locks.query()
      return held.some((lock) => lock.name === nameOf(refresh))
    },
  }
}

/** FNV-1a, 32 bits. */
function fingerprint(text: string) {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(16)
}
