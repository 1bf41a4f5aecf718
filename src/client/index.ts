import type { AuthListener, AuthStore } from './auth-state'
import { usersCalls } from './calls'
import { browserGlobal } from './globals'
import { browserLocks, type Locks } from './refresh'
import { sender } from './request'
import type { Fetcher } from './result'
import { createSession } from './session'
import { defaultStorage, type TokenStorage } from './storage'

export type { AuthEvent, AuthListener, AuthSnapshot, AuthStore } from './auth-state'
export type { Locks } from './refresh'
export type { CallOptions } from './request'
export type { SignIn } from './session'
export type { ProviderRedirect, ProviderSignIn } from './calls'
export { isHttp, type ClientError, type Fetcher, type HttpError, type Result, type TransportError } from './result'
export { localStorageAdapter, memoryStorage, sessionStorageAdapter, type TokenStorage, type WebStorage } from './storage'
export type * from './types'
export type { Routes } from './routes'

export type UsersClientOptions = {
  /** The service's origin, e.g. `https://api.example.com`. */
  baseUrl: string
  /**
   * Where the tokens live. By default in a page: the access token in memory, the refresh token in this tab's
   * sessionStorage (`sessionStorageAdapter()`); elsewhere memory. `localStorageAdapter()` is the opt-in that
   * survives closing the browser. See docs/client.md for the trade-off.
   */
  storage?: TokenStorage
  /**
   * A BroadcastChannel name shared by the tabs of one app: they share the session, its events and one refresh.
   * `'users-service'` by default in a page; `false` for a tab on its own.
   */
  channel?: string | false
  /** Called when the session ends other than by this client's `logout`: a refused refresh, or a logout in another tab. */
  onLoggedOut?: () => void
  /** The old service understands only `JWT`; this one also takes `Bearer`. */
  scheme?: 'JWT' | 'Bearer'
  /** Refresh this many seconds before the access token expires, so that it does not expire in flight. */
  refreshSkewSeconds?: number
  /** Give up on a request after this long: the result is `{kind: 'timeout'}`. */
  timeoutMs?: number
  /** Read `/me` at start and after each sign-in, so that the auth snapshot holds the user. */
  loadUser?: boolean
  /** How long a new tab waits for an open tab to hand it the session. */
  handoffMs?: number
  /** The Web Locks API, `navigator.locks` by default; `false` to use the channel's announcements instead. */
  locks?: Locks | false
  fetcher?: Fetcher
  /** Milliseconds since the epoch. */
  now?: () => number
}

/**
 * The Users service's client for a browser (or another service): typed calls for every flow, each with a
 * result to switch on; the tokens kept, attached and refreshed; an auth state to subscribe to, shared by the
 * tabs of the app, which refresh once between them.
 */
export function createUsersClient({
  baseUrl,
  storage = defaultStorage(),
  channel = browserGlobal('document') ? 'users-service' : false,
  onLoggedOut = () => {},
  scheme = 'JWT',
  refreshSkewSeconds = 30,
  timeoutMs = 30_000,
  loadUser = true,
  handoffMs = 300,
  locks = browserLocks(),
  fetcher = (url, init) => fetch(url, init),
  now = Date.now,
}: UsersClientOptions) {
  const send = sender({ baseUrl, fetcher, timeoutMs, scheme })
  const session = createSession({
    send,
    storage,
    channel: channel || null,
    locks: locks || undefined,
    loadUser,
    handoffMs,
    refreshSkewSeconds,
    now,
    onLoggedOut,
  })
  const { auth } = session

  return {
    /** The auth state: `subscribe(listener)` returns its unsubscribe; `getSnapshot()` is stable between changes. */
    auth: { subscribe: auth.subscribe, getSnapshot: auth.getSnapshot } satisfies AuthStore,
    /** Calls `callback` on every auth event; first, once the client knows it, with `initial_session`. Returns the unsubscribe. */
    onAuthStateChange(callback: AuthListener) {
      let unsubscribed = false
      void session.ready.then(() => unsubscribed || callback('initial_session', auth.getSnapshot()))
      const unsubscribe = auth.subscribe((event, snapshot) => event === 'initial_session' || callback(event, snapshot))
      return () => {
        unsubscribed = true
        unsubscribe()
      }
    },
    /** Resolves with the snapshot once the initial session is known. */
    ready: session.ready,
    /** The cached current user (the last `/me` or profile answer), or null. */
    get user() {
      return session.user()
    },
    /** The current pair, or null when signed out. */
    get tokens() {
      return storage.get()
    },
    ...usersCalls(session, storage, baseUrl),
    /** Stops listening to the other tabs. */
    close: session.close,
  }
}

export type UsersClient = ReturnType<typeof createUsersClient>
