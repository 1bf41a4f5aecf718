import { treaty } from '@elysiajs/eden'
import type { App } from './app'
import type { TokenPair } from './sessions/tokens'

export type { TokenPair }

/** Where the client keeps its token pair. */
export type TokenStorage = { get(): TokenPair | null; set(pair: TokenPair | null): void }

/** The Web Storage methods the adapter uses (`localStorage`, `sessionStorage`). */
export type WebStorage = { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void }

export type Fetcher = (url: string, init: RequestInit) => Promise<Response>

export type UsersClientOptions = {
  /** The service's origin, e.g. `https://api.example.com`. */
  baseUrl: string
  /** Memory by default: the tokens last as long as the page or process. */
  storage?: TokenStorage
  /** Called when the session ends other than by this client's `logout`: a refused refresh, or a logout in another tab. */
  onLoggedOut?: () => void
  /** The old service understands only `JWT`; this one also takes `Bearer`. */
  scheme?: 'JWT' | 'Bearer'
  /** Refresh this many seconds before the access token expires, so that it does not expire in flight. */
  refreshSkewSeconds?: number
  /** A BroadcastChannel name shared by the tabs of one app: they share tokens and refresh once between them. */
  channel?: string
  fetcher?: Fetcher
  /** Milliseconds since the epoch. */
  now?: () => number
}

/** A login's 403 `mfa_required`: the token for the second step and the methods that can take it. */
export type MfaRequired = { mfa_token: string; methods: ('totp' | 'recovery_code' | 'passkey')[] }

type Message = { type: 'tokens'; pair: TokenPair } | { type: 'logged-out' } | { type: 'refreshing'; access: string }

// Shorter than the server's 10 s refresh grace: when the refreshing tab dies after the server rotated,
// this tab's late refresh with the same token still gets the successor instead of ending the session.
const PEER_REFRESH_WAIT_MS = 5000

const TOKEN_ROUTES = /\/api\/users\/(?:login|register|refresh|login\/mfa|passkeys\/login(?:\/options)?)\/?$/

declare const localStorage: WebStorage

/** Tokens in memory only. */
export function memoryStorage(initial: TokenPair | null = null): TokenStorage {
  let pair = initial
  return {
    get: () => pair,
    set: (next) => {
      pair = next
    },
  }
}

/** Tokens in `localStorage` (or another Web Storage) under one key, so that they survive a reload. */
export function localStorageAdapter(key = 'users-service.tokens', store: WebStorage = localStorage): TokenStorage {
  return {
    get() {
      try {
        const pair = JSON.parse(store.getItem(key) ?? 'null')
        return typeof pair?.access === 'string' && typeof pair.refresh === 'string' ? { access: pair.access, refresh: pair.refresh } : null
      } catch {
        return null
      }
    },
    set: (pair) => (pair ? store.setItem(key, JSON.stringify(pair)) : store.removeItem(key)),
  }
}

/**
 * The typed Eden treaty for this service, with the tokens handled: each request carries the access
 * token, one about to expire is refreshed first, and a 401 is refreshed and retried once. Concurrent
 * requests, and tabs sharing a channel, share one refresh, so that the server's refresh-token reuse
 * detection never fires on a well-behaved client.
 */
export function createUsersClient({
  baseUrl,
  storage = memoryStorage(),
  onLoggedOut = () => {},
  scheme = 'JWT',
  refreshSkewSeconds = 30,
  channel: channelName,
  fetcher = fetch,
  now = Date.now,
}: UsersClientOptions) {
  const tabs = syncTabs(channelName, storage, onLoggedOut)
  const store = tabs.store
  // Eden types its fetcher as the global fetch, which in Bun carries extra properties; it only calls it.
  const plain = treaty<App>(baseUrl, { fetcher: fetcher as typeof fetch })
  const refresh = singleFlightRefresh({ storage, tabs, onLoggedOut, send: (refresh) => plain.api.users.refresh.post({ refresh }) })
  const expiresSoon = (access: string) => {
    const exp = expiryOf(access)
    return exp !== null && (exp - refreshSkewSeconds) * 1000 <= now()
  }
  const authorizedFetch = authorizingFetch({ fetcher, storage, scheme, expiresSoon, refresh })
  const api = treaty<App>(baseUrl, { fetcher: authorizedFetch as typeof fetch })

  return {
    /** The Eden treaty: `client.treaty.api.users.me.get()`. */
    treaty: api,
    /** The current pair, or null when logged out. */
    get tokens() {
      return storage.get()
    },
    /**
     * Logs in and keeps the tokens; a 400 names the fields, as the form shows them. An account with a second
     * factor answers no tokens but `mfaRequired` (not null): ask for a code and call `loginMfa` with its token.
     */
    async login(body: Parameters<typeof plain.api.users.login.post>[0]) {
      const response = await plain.api.users.login.post(body)
      if (response.data) store(response.data)
      return { ...response, mfaRequired: mfaRequiredIn(response.error) }
    },
    /** The login's second step: the `mfaRequired.mfa_token` and a TOTP or recovery code; keeps the tokens. */
    async loginMfa(body: Parameters<typeof plain.api.users.login.mfa.post>[0]) {
      const response = await plain.api.users.login.mfa.post(body)
      if (response.data) store(response.data)
      return response
    },
    /** Passkeys: options for `navigator.credentials.get`, then its answer signs in (no password) and the tokens are kept. */
    passkeyLoginOptions: () => plain.api.users.passkeys.login.options.post(),
    async passkeyLogin(body: Parameters<typeof plain.api.users.passkeys.login.post>[0]) {
      const response = await plain.api.users.passkeys.login.post(body)
      if (response.data) store(response.data)
      return response
    },
    /** The caller's second factors, as the settings page manages them (each call sends the access token). */
    mfa: {
      list: () => api.api.users.mfa.get(),
      enrolTotp: (body: Parameters<typeof api.api.users.mfa.totp.post>[0]) => api.api.users.mfa.totp.post(body),
      confirmTotp: (id: string, code: string) => api.api.users.mfa.totp({ id }).confirm.post({ code }),
      regenerateRecoveryCodes: (currentPassword: string) => api.api.users.mfa['recovery-codes'].post({ current_password: currentPassword }),
      remove: (id: string, currentPassword: string) => api.api.users.mfa({ id }).delete({ current_password: currentPassword }),
      passkeyRegistrationOptions: (currentPassword: string) => api.api.users.passkeys.register.options.post({ current_password: currentPassword }),
      registerPasskey: (body: Parameters<typeof api.api.users.passkeys.register.post>[0]) => api.api.users.passkeys.register.post(body),
    },
    /** Creates an account and keeps its tokens. */
    async register(body: Parameters<typeof plain.api.users.register.post>[0]) {
      const response = await plain.api.users.register.post(body)
      if (response.data) store(response.data)
      return response
    },
    /** Ends this session on the server and forgets the tokens, even when the server cannot be reached; null without a session. */
    async logout() {
      const pair = storage.get()
      const response = pair && (await api.api.users.logout.post({ refresh: pair.refresh }))
      store(null)
      return response
    },
    /** Ends every session of the user on the server and forgets the tokens. */
    async logoutAll() {
      const response = await api.api.users['logout-all'].post()
      store(null)
      return response
    },
    /** Stops listening to the other tabs. */
    close: tabs.close,
  }
}

export type UsersClient = ReturnType<typeof createUsersClient>

type Tabs = ReturnType<typeof syncTabs>

/** The tabs on one channel: each tab's tokens reach the others, and a tab waits while another refreshes the pair it holds. */
function syncTabs(channelName: string | undefined, storage: TokenStorage, onLoggedOut: () => void) {
  const channel = channelName ? new BroadcastChannel(channelName) : null
  let peer: { access: string; done: Promise<void>; settle(): void } | null = null

  if (channel) channel.onmessage = (event) => adopt(event.data)

  // Another tab's news: its tokens are adopted rather than refreshed again. A logout is reported even when
  // the tabs share localStorage, which the other tab has already emptied.
  function adopt(message: Message) {
    if (message.type === 'refreshing') return awaitPeer(message.access)
    if (message.type === 'tokens') storage.set(message.pair)
    if (message.type === 'logged-out') {
      storage.set(null)
      onLoggedOut()
    }
    peer?.settle()
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
    /** Keeps the pair (null: logged out) and tells the other tabs. */
    store(pair: TokenPair | null) {
      storage.set(pair)
      channel?.postMessage((pair ? { type: 'tokens', pair } : { type: 'logged-out' }) satisfies Message)
    },
    /** Tells the other tabs this one is refreshing `access`, so that they wait for its result. */
    announceRefresh(access: string) {
      channel?.postMessage({ type: 'refreshing', access } satisfies Message)
    },
    /** Resolves when the other tab refreshing `access` reports back (or after a wait); undefined when none is. */
    peerRefreshing: (access: string) => (peer?.access === access ? peer.done : undefined),
    close() {
      peer?.settle()
      channel?.close()
    },
  }
}

/** Refreshes a stale pair; every caller that finds the tokens stale while a refresh is under way gets its result. */
function singleFlightRefresh({
  storage,
  tabs,
  onLoggedOut,
  send,
}: {
  storage: TokenStorage
  tabs: Tabs
  onLoggedOut: () => void
  send: (refresh: string) => Promise<{ data: TokenPair | null; status: number }>
}) {
  let refreshing: Promise<TokenPair | null> | null = null

  /** The pair that replaces `stale`, or null when none could be had. */
  async function rotate(stale: TokenPair): Promise<TokenPair | null> {
    const peer = tabs.peerRefreshing(stale.access)
    if (peer) await peer
    // Another request or tab already replaced, or ended, this pair.
    if (storage.get()?.access !== stale.access) return storage.get()
    tabs.announceRefresh(stale.access)
    const { data, status } = await send(stale.refresh)
    // A login or logout while the refresh was under way is newer than its result.
    if (storage.get()?.refresh !== stale.refresh) return storage.get()
    if (data) {
      tabs.store(data)
      return data
    }
    if (status === 401) {
      tabs.store(null)
      onLoggedOut()
    }
    // Any other failure (network, 503) is transient: the pair is kept for the next attempt.
    return null
  }

  return (stale: TokenPair) => {
    refreshing ??= rotate(stale).finally(() => {
      refreshing = null
    })
    return refreshing
  }
}

/** `fetcher` with the access token added: refreshed first when it expires soon, and once more after a 401. */
function authorizingFetch({
  fetcher,
  storage,
  scheme,
  expiresSoon,
  refresh,
}: {
  fetcher: Fetcher
  storage: TokenStorage
  scheme: string
  expiresSoon: (access: string) => boolean
  refresh: (stale: TokenPair) => Promise<TokenPair | null>
}) {
  return async (url: string, init: RequestInit) => {
    const headers = new Headers(init.headers)
    // A caller that authorizes a request itself (a service passing on its user's token) is left alone.
    if (headers.has('authorization') || TOKEN_ROUTES.test(new URL(url).pathname)) return fetcher(url, init)
    const send = (pair: TokenPair | null) => {
      if (pair) headers.set('authorization', `${scheme} ${pair.access}`)
      return fetcher(url, { ...init, headers })
    }
    let pair = storage.get()
    if (pair && expiresSoon(pair.access)) pair = (await refresh(pair)) ?? storage.get()
    const response = await send(pair)
    if (response.status !== 401 || !pair) return response
    const next = await refresh(pair)
    return next ? send(next) : response
  }
}

/** The step-up of a login's 403 `mfa_required`, or null for any other answer. */
function mfaRequiredIn(error: { status: unknown; value: unknown } | null): MfaRequired | null {
  const body = error?.status === 403 ? (error.value as Partial<MfaRequired> & { code?: string }) : undefined
  return body?.code === 'mfa_required' && typeof body.mfa_token === 'string' ? { mfa_token: body.mfa_token, methods: body.methods ?? [] } : null
}

/** The token's `exp` claim, read without verification: the client only needs to know when to refresh. */
function expiryOf(token: string): number | null {
  try {
    const payload = JSON.parse(atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')))
    return typeof payload.exp === 'number' ? payload.exp : null
  } catch {
    return null
  }
}
