import type { TokenStorage } from './storage'
import { sameSession, sessionOf } from './tokens'
import type { TokenPair, User } from './types'

type Message =
  | { type: 'signed_in'; pair: TokenPair; user: User | null }
  | { type: 'refreshed'; pair: TokenPair }
  | { type: 'signed_out'; session: string | null }
  | { type: 'user'; user: User }
  | { type: 'refreshing'; access: string }
  | { type: 'hello' }
  | { type: 'welcome'; pair: TokenPair; user: User | null }

/** What this tab does with another tab's news. */
export type TabNews = {
  signedIn(user: User | null): void
  refreshed(): void
  signedOut(): void
  userUpdated(user: User): void
  /** The user this tab holds, handed to a new tab with the pair. */
  currentUser(): User | null
}

// Shorter than the server's 10 s refresh grace: when the refreshing tab dies after the server rotated,
// this tab's late refresh with the same token still gets the successor instead of ending the session.
const PEER_REFRESH_WAIT_MS = 5000

export type Tabs = ReturnType<typeof syncTabs>

/**
 * The tabs of one app on a BroadcastChannel: a login, refresh, logout or profile change in one reaches the
 * others, and a new tab asks the open ones for the session. Without `channelName` the tab is on its own.
 */
export function syncTabs(channelName: string | null, storage: TokenStorage, news: TabNews) {
  const channel = channelName && typeof BroadcastChannel === 'function' ? new BroadcastChannel(channelName) : null
  let peer: { access: string; done: Promise<void>; settle(): void } | null = null
  let handoff: ((user: User | null) => void) | null = null
  const waiters = new Set<() => void>()

  if (channel) channel.onmessage = (event) => adopt(event.data as Message)
  let closed = false
  // A request still under way when the app closed the client must not fail on the closed channel.
  const post = (message: Message) => void (closed || channel?.postMessage(message))

  function adopt(message: Message) {
    switch (message.type) {
      case 'refreshing':
        return awaitPeer(message.access)
      case 'hello': {
        const pair = storage.get()
        if (pair) post({ type: 'welcome', pair, user: news.currentUser() })
        return
      }
      case 'welcome':
        if (!handoff || storage.get()) return
        storage.set(message.pair)
        handoff(message.user)
        break
      case 'signed_in':
        storage.set(message.pair)
        news.signedIn(message.user)
        break
      case 'refreshed':
        // Late news of a session this tab has left since (a logout, another sign-in) must not bring it back.
        if (!sameSession(storage.get(), message.pair)) return
        storage.set(message.pair)
        news.refreshed()
        break
      case 'signed_out': {
        // Only the session the other tab left: this one may have signed in to another since. Reported even when
        // the tabs share localStorage, which the other tab has already emptied.
        const held = storage.get()
        if (held && sessionOf(held) !== message.session) return
        storage.set(null)
        news.signedOut()
        break
      }
      case 'user':
        return news.userUpdated(message.user)
    }
    peer?.settle()
    for (const wake of [...waiters]) wake()
  }

  function awaitPeer(access: string) {
    if (storage.get()?.access !== access) return
    peer?.settle()
    let resolve = () => {}
    const done = new Promise<void>((settle) => (resolve = settle))
    const settle = () => {
      clearTimeout(timer)
      if (peer?.done === done) peer = null
      resolve()
    }
    const timer = setTimeout(settle, PEER_REFRESH_WAIT_MS)
    peer = { access, done, settle }
  }

  return {
    signedIn: (pair: TokenPair, user: User | null) => post({ type: 'signed_in', pair, user }),
    refreshed: (pair: TokenPair) => post({ type: 'refreshed', pair }),
    /** Tells the other tabs this one left `session` (the one it held, or null). */
    signedOut: (session: string | null) => post({ type: 'signed_out', session }),
    userUpdated: (user: User) => post({ type: 'user', user }),
    /** Asks the open tabs for their session; the user they hold, or undefined when none answers within `ms`. */
    askForSession(ms: number): Promise<{ user: User | null } | undefined> {
      if (!channel) return Promise.resolve(undefined)
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          handoff = null
          resolve(undefined)
        }, ms)
        handoff = (user) => {
          clearTimeout(timer)
          handoff = null
          resolve({ user })
        }
        post({ type: 'hello' })
      })
    },
    /** Resolves when another tab's news replaces the pair whose refresh token is `refresh`, or after `ms`. */
    replaced(refresh: string, ms: number): Promise<void> {
      return new Promise((resolve) => {
        const wake = () => {
          if (storage.get()?.refresh === refresh) return
          clearTimeout(timer)
          waiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(wake)
          resolve()
        }, ms)
        waiters.add(wake)
        wake()
      })
    },
    /** Without Web Locks: tells the other tabs this one is refreshing `access`, so that they wait for its result. */
    announceRefresh: (access: string) => post({ type: 'refreshing', access }),
    /** Resolves when the other tab refreshing `access` reports back (or after a wait); undefined when none is. */
    peerRefreshing: (access: string) => (peer?.access === access ? peer.done : undefined),
    close() {
      closed = true
      peer?.settle()
      channel?.close()
    },
  }
}
