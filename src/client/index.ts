import { createAuthStore, type AuthListener, type AuthSnapshot, type AuthStore } from './auth-state'
import { browserGlobal } from './globals'
import { browserLocks, NOT_SIGNED_IN, singleFlightRefresh } from './refresh'
import type { Locks } from './refresh'
import { exchange, failed, httpError, ok, type Fetcher, type Result } from './result'
import { defaultStorage, type TokenStorage } from './storage'
import { syncTabs } from './tabs'
import type * as T from './types'

export type { AuthEvent, AuthListener, AuthSnapshot, AuthStore } from './auth-state'
export type { Locks } from './refresh'
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

/** Options of one call: an AbortSignal, or headers (an `authorization` of the caller's own is sent untouched). */
export type CallOptions = { signal?: AbortSignal; headers?: Record<string, string> }

/** A sign-in's outcome: signed in (the user read from `/me`, null if that read failed), or a second factor needed. */
export type SignIn = { step: 'signed_in'; user: T.User | null } | ({ step: 'mfa_required' } & T.MfaRequired)

type Request = { method: string; path: string; body?: unknown; query?: Record<string, unknown>; auth: boolean; options?: CallOptions }

const API = '/api/users'

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
  const origin = baseUrl.replace(/\/+$/, '')
  const auth = createAuthStore()
  const user = () => auth.getSnapshot().user

  const tabs = syncTabs(channel || null, storage, {
    signedIn: (user) => auth.emit('signed_in', { status: 'signed_in', user }),
    refreshed: () => auth.emit('token_refreshed'),
    signedOut() {
      auth.emit('signed_out', { status: 'signed_out', user: null })
      onLoggedOut()
    },
    userUpdated: (user) => auth.emit('user_updated', { user }),
    currentUser: user,
  })

  const refresh = singleFlightRefresh({
    storage,
    tabs,
    locks: locks || undefined,
    lockName: `${channel || 'users-service'}.refresh`,
    send: (refresh) => call<T.TokenPair>({ method: 'POST', path: '/refresh', body: { refresh }, auth: false }),
    rotated(pair) {
      storage.set(pair)
      tabs.refreshed(pair)
      auth.emit('token_refreshed')
    },
    ended() {
      signedOut()
      onLoggedOut()
    },
  })

  /** Forgets the session here and in the other tabs. */
  function signedOut() {
    storage.set(null)
    tabs.signedOut()
    auth.emit('signed_out', { status: 'signed_out', user: null })
  }

  async function signedIn(pair: T.TokenPair): Promise<Result<SignIn>> {
    storage.set(pair)
    const me = loadUser ? await call<T.User>({ method: 'GET', path: '/me', auth: true }) : undefined
    const current = me?.ok ? me.data : null
    tabs.signedIn(pair, current)
    auth.emit('signed_in', { status: 'signed_in', user: current })
    return ok({ step: 'signed_in', user: current })
  }

  /** A user body from the service that differs from the cached one: kept, and told to listeners and the other tabs. */
  function userUpdated(next: T.User) {
    const { status, user } = auth.getSnapshot()
    if (status !== 'signed_in' || JSON.stringify(user) === JSON.stringify(next)) return
    tabs.userUpdated(next)
    auth.emit('user_updated', { user: next })
  }

  /** A sign-in route's answer: tokens, or the 403 that asks for a second factor. */
  async function signIn(answer: Result<T.TokenPair>): Promise<Result<SignIn>> {
    if (answer.ok) return signedIn(answer.data)
    const { error } = answer
    const body = error.kind === 'http' && error.status === 403 && error.code === 'mfa_required' ? (error.body as Partial<T.MfaRequired>) : undefined
    if (typeof body?.mfa_token === 'string') return ok({ step: 'mfa_required', mfa_token: body.mfa_token, methods: body.methods ?? [] })
    return answer
  }

  const expiresSoon = (access: string) => {
    // An access token not known (kept in memory only, before a reload) is refreshed before use.
    if (!access) return true
    const exp = expiryOf(access)
    return exp !== null && (exp - refreshSkewSeconds) * 1000 <= now()
  }

  async function send<Data>(request: Request, access?: string): Promise<Result<Data>> {
    const headers: Record<string, string> = { ...request.options?.headers }
    if (access && !hasAuthorization(headers)) headers.authorization = `${scheme} ${access}`
    let body: RequestInit['body']
    if (request.body instanceof FormData) body = request.body
    else if (request.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(request.body)
    }
    const init: RequestInit = { method: request.method, headers, body }
    if (request.options?.signal) init.signal = request.options.signal
    const answer = await exchange(fetcher, `${origin}${API}${request.path}${queryString(request.query)}`, init, timeoutMs)
    if ('error' in answer) return failed(answer.error)
    return answer.response.ok ? ok(answer.body as Data) : failed(httpError(answer.response, answer.body))
  }

  /** One call: with the access token (refreshed first when it expires soon, and once more after a 401) when `auth`. */
  async function call<Data>(request: Request): Promise<Result<Data>> {
    if (!request.auth || hasAuthorization(request.options?.headers ?? {})) return send(request)
    let pair = storage.get()
    if (pair && expiresSoon(pair.access)) {
      const next = await refresh(pair)
      pair = next.ok ? next.data : storage.get()
    }
    const first = await send<Data>(request, pair?.access)
    if (first.ok || first.error.kind !== 'http' || first.error.status !== 401 || !pair) return first
    const next = await refresh(pair)
    return next.ok ? send(request, next.data.access) : first
  }

  const get = <Data>(path: string, query?: Record<string, unknown>, options?: CallOptions) =>
    call<Data>({ method: 'GET', path, query, auth: true, options })
  const authed = <Data>(method: string, path: string, body?: unknown, options?: CallOptions) => call<Data>({ method, path, body, auth: true, options })
  const open = <Data>(path: string, body?: unknown, options?: CallOptions) => call<Data>({ method: 'POST', path, body, auth: false, options })
  const id = (value: string) => encodeURIComponent(value)

  /** Whether the tab starts signed in: its own stored pair, or one handed over by an open tab; then `initial_session`. */
  async function start(): Promise<AuthSnapshot> {
    let current: T.User | null = null
    if (!storage.get()) current = (await tabs.askForSession(handoffMs))?.user ?? null
    if (storage.get() && !current && loadUser) {
      const me = await get<T.User>('/me')
      if (me.ok) current = me.data
    }
    // A sign-in or sign-out in the meantime already said where the tab stands.
    if (auth.getSnapshot().status === 'loading') auth.emit('initial_session', { status: storage.get() ? 'signed_in' : 'signed_out', user: current })
    else auth.emit('initial_session')
    return auth.getSnapshot()
  }
  const ready = start()

  const profile = async (result: Promise<Result<T.User>>) => {
    const answer = await result
    if (answer.ok) userUpdated(answer.data)
    return answer
  }

  return {
    /** The auth state: `subscribe(listener)` returns its unsubscribe; `getSnapshot()` is stable between changes. */
    auth: { subscribe: auth.subscribe, getSnapshot: auth.getSnapshot } satisfies AuthStore,
    /**
     * Calls `callback` on every auth event; first, once the client knows it, with `initial_session`.
     * Returns the unsubscribe.
     */
    onAuthStateChange(callback: AuthListener) {
      let unsubscribed = false
      void ready.then(() => unsubscribed || callback('initial_session', auth.getSnapshot()))
      const unsubscribe = auth.subscribe((event, snapshot) => event === 'initial_session' || callback(event, snapshot))
      return () => {
        unsubscribed = true
        unsubscribe()
      }
    },
    /** Resolves with the snapshot once the initial session is known. */
    ready,
    /** The cached current user (the last `/me` or profile answer), or null. */
    get user() {
      return user()
    },
    /** The current pair, or null when signed out. */
    get tokens() {
      return storage.get()
    },

    /** Creates an account and signs in. A 400 names the fields, as the form shows them. */
    register: (body: T.RegisterBody, options?: CallOptions) => open<T.TokenPair>('/register', body, options).then(signIn),
    /** Signs in; an account with a second factor answers `step: 'mfa_required'`: ask for a code, then `loginMfa`. */
    login: (body: T.LoginBody, options?: CallOptions) => open<T.TokenPair>('/login', body, options).then(signIn),
    /** The login's second step: the `mfa_token` and a TOTP or recovery code. */
    loginMfa: (body: T.LoginMfaBody, options?: CallOptions) => open<T.TokenPair>('/login/mfa', body, options).then(signIn),
    /** Ends this session on the service and forgets it here and in the other tabs, even when the service cannot be reached. */
    async logout(options?: CallOptions): Promise<Result<void>> {
      const pair = storage.get()
      const answer = pair ? await authed<void>('POST', '/logout', { refresh: pair.refresh }, options) : ok(undefined)
      signedOut()
      return answer
    },
    /** Ends every session of the user and forgets this one. */
    async logoutAll(options?: CallOptions): Promise<Result<void>> {
      const answer = await authed<void>('POST', '/logout-all', undefined, options)
      signedOut()
      return answer
    },
    /** Rotates the pair now (one refresh for all tabs that ask together); requests refresh by themselves when needed. */
    async refresh(): Promise<Result<void>> {
      const pair = storage.get()
      if (!pair) return failed(NOT_SIGNED_IN)
      const next = await refresh(pair)
      return next.ok ? ok(undefined) : next
    },

    /** The caller's own User; the cached user follows it. */
    me: (options?: CallOptions) => profile(get<T.User>('/me', undefined, options)),
    /** A partial update of `full_name`, `email`, `password` (those two with `current_password`) or `profile_pic`. */
    updateProfile(body: T.ProfileUpdate, options?: CallOptions) {
      const form = Object.values(body).some((value) => value instanceof Blob) ? formOf(body) : body
      return profile(authed<T.User>('PATCH', '/update', form, options))
    },
    /** Sets the profile picture: a `File` from an `<input type="file">`, or any Blob. */
    uploadPicture: (picture: Blob, options?: CallOptions) => profile(authed<T.User>('PATCH', '/update', formOf({ profile_pic: picture }), options)),
    removePicture: (options?: CallOptions) => profile(authed<T.User>('PATCH', '/update', { profile_pic: null }, options)),
    /** Deletes the caller's account (every session ends); signs out here and in the other tabs. */
    async deleteAccount(options?: CallOptions): Promise<Result<void>> {
      let ownId = user()?.id
      if (!ownId) {
        const me = await get<T.User>('/me', undefined, options)
        if (!me.ok) return me
        ownId = me.data.id
      }
      const answer = await authed<void>('DELETE', `/${id(ownId)}`, undefined, options)
      if (answer.ok) signedOut()
      return answer
    },

    users: {
      /** Another user's public profile (yours, or an admin's view, has `email`). */
      get: (userId: string, options?: CallOptions) => get<T.PublicUser>(`/${id(userId)}`, undefined, options),
      /** The directory: `{ids}` for many users at once, or `{search, page, page_size}`. */
      list: (query: T.DirectoryQuery = {}, options?: CallOptions) => get<T.DirectoryPage>('', query, options),
    },
    sessions: {
      /** The caller's live sessions, `current` marking this one. */
      list: (options?: CallOptions) => get<T.Session[]>('/sessions', undefined, options),
      /** Ends one of the caller's sessions (another device). */
      revoke: (sessionId: string, options?: CallOptions) => authed<void>('DELETE', `/sessions/${id(sessionId)}`, undefined, options),
    },
    /** The caller's security events, newest first. */
    securityLog: (query: T.SecurityLogQuery = {}, options?: CallOptions) => get<T.SecurityLogPage>('/me/security-log', query, options),

    password: {
      /** Sends the reset message; 202 whether or not an account uses the address. */
      requestReset: (email: string, options?: CallOptions) => open<T.Accepted>('/password/reset', { email }, options),
      /** `{token, password}` from the link, or `{email, code, password}`; signs in (or asks for the second factor). */
      confirmReset: (body: T.PasswordResetConfirmBody, options?: CallOptions) => open<T.TokenPair>('/password/reset/confirm', body, options).then(signIn),
    },
    email: {
      /** `{token}` from the link, or `{email, code}`; the cached user follows when it is the caller. */
      async verify(body: T.EmailVerifyBody, options?: CallOptions) {
        const answer = await open<T.User>('/email/verify', body, options)
        if (answer.ok && answer.data.id === user()?.id) userUpdated(answer.data)
        return answer
      },
      /** Sends the verification message again to the caller's address. */
      resendVerification: (options?: CallOptions) => authed<T.Accepted>('POST', '/email/verify/resend', undefined, options),
    },
    mfa: {
      list: (options?: CallOptions) => get<T.MfaFactors>('/mfa', undefined, options),
      /** Starts adding an authenticator app: show `otpauth_url` as a QR code, then `confirmTotp` with its code. */
      enrolTotp: (body: { current_password: string; name?: string }, options?: CallOptions) => authed<T.TotpEnrolment>('POST', '/mfa/totp', body, options),
      /** Enables the app; answers the recovery codes, to show once. */
      confirmTotp: (factorId: string, code: string, options?: CallOptions) =>
        authed<T.RecoveryCodes>('POST', `/mfa/totp/${id(factorId)}/confirm`, { code }, options),
      regenerateRecoveryCodes: (currentPassword: string, options?: CallOptions) =>
        authed<T.RecoveryCodes>('POST', '/mfa/recovery-codes', { current_password: currentPassword }, options),
      /** Removes a factor (an app or a passkey). */
      remove: (factorId: string, currentPassword: string, options?: CallOptions) =>
        authed<void>('DELETE', `/mfa/${id(factorId)}`, { current_password: currentPassword }, options),
    },
    passkeys: {
      /** Options for `navigator.credentials.create` (`startRegistration({ optionsJSON })`). */
      registrationOptions: (currentPassword: string, options?: CallOptions) =>
        authed<T.PasskeyRegistrationOptions>('POST', '/passkeys/register/options', { current_password: currentPassword }, options),
      /** The browser's answer, `{credential, name?}`; answers the passkey with new recovery codes. */
      register: (body: T.PasskeyRegistrationBody, options?: CallOptions) => authed<T.Passkey>('POST', '/passkeys/register', body, options),
      /** Options for `navigator.credentials.get` (`startAuthentication({ optionsJSON })`). */
      loginOptions: (options?: CallOptions) => open<T.PasskeyLoginOptions>('/passkeys/login/options', undefined, options),
      /** Signs in with the browser's answer, `{credential}`: no email, no password. */
      login: (body: T.PasskeyLoginBody, options?: CallOptions) => open<T.TokenPair>('/passkeys/login', body, options).then(signIn),
      remove: (factorId: string, currentPassword: string, options?: CallOptions) =>
        authed<void>('DELETE', `/mfa/${id(factorId)}`, { current_password: currentPassword }, options),
    },

    /** Stops listening to the other tabs. */
    close: tabs.close,
  }
}

export type UsersClient = ReturnType<typeof createUsersClient>

const hasAuthorization = (headers: Record<string, string>) => Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')

function queryString(query: Record<string, unknown> | undefined) {
  const pairs = Object.entries(query ?? {}).filter(([, value]) => value !== undefined && value !== null)
  return pairs.length ? `?${new URLSearchParams(pairs.map(([key, value]): [string, string] => [key, String(value)]))}` : ''
}

/** A multipart body: files as they are, `null` as the empty value that removes a picture. */
function formOf(fields: Record<string, unknown>) {
  const form = new FormData()
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue
    form.append(key, value instanceof Blob ? value : value === null ? '' : String(value))
  }
  return form
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
