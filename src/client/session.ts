import { createAuthStore, type AuthSnapshot } from './auth-state'
import { NOT_SIGNED_IN, singleFlightRefresh, type Locks } from './refresh'
import { authorizingCall, type Send } from './request'
import { failed, ok, type Result } from './result'
import type { TokenStorage } from './storage'
import { syncTabs } from './tabs'
import { sameSession, sessionOf } from './tokens'
import type { MfaRequired, TokenPair, User } from './types'

/** A sign-in's outcome: signed in (the user read from `/me`, null if that read failed), or a second factor needed. */
export type SignIn = { step: 'signed_in'; user: User | null } | ({ step: 'mfa_required' } & MfaRequired)

export type SessionSettings = {
  send: Send
  storage: TokenStorage
  channel: string | null
  locks: Locks | undefined
  loadUser: boolean
  handoffMs: number
  refreshSkewSeconds: number
  now: () => number
  onLoggedOut: () => void
}

export type Session = ReturnType<typeof createSession>

/**
 * The tab's session: its tokens, its auth state and the other tabs'. Every change goes through here, so that
 * the storage, the listeners and the other tabs always hear of it together.
 */
export function createSession({ send, storage, channel, locks, loadUser, handoffMs, refreshSkewSeconds, now, onLoggedOut }: SessionSettings) {
  const auth = createAuthStore()
  const user = () => auth.getSnapshot().user

  const tabs = syncTabs(channel, storage, {
    signedIn: (user) => auth.emit('signed_in', { status: 'signed_in', user }),
    refreshed: () => auth.emit('token_refreshed'),
    signedOut() {
      // A tab already signed out (the tabs share localStorage, or it never signed in) has nothing to report.
      if (auth.getSnapshot().status === 'signed_out') return
      auth.emit('signed_out', { status: 'signed_out', user: null })
      onLoggedOut()
    },
    userUpdated(next) {
      // Late news of an account this tab no longer holds.
      const { status, user: held } = auth.getSnapshot()
      if (status === 'signed_in' && (held === null || held.id === next.id)) auth.emit('user_updated', { user: next })
    },
    currentUser: user,
  })

  const refresh = singleFlightRefresh({
    storage,
    tabs,
    locks,
    lockName: `${channel ?? 'users-service'}.refresh`,
    send: (refresh) => send<TokenPair>({ method: 'POST', path: '/refresh', body: { refresh }, auth: false }),
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

  const call = authorizingCall({ send, storage, refresh, refreshSkewSeconds, now })
  const readMe = () => call<User>({ method: 'GET', path: '/me', auth: true })

  /**
   * Forgets the session here and in the other tabs. Given `ended`, the pair a logout started with, only while the
   * tab still holds that session: another tab's sign-in handed to this one during the logout is not the one it ended.
   */
  function signedOut(ended?: TokenPair | null) {
    const held = storage.get()
    if (ended && held && !sameSession(held, ended)) return
    storage.set(null)
    tabs.signedOut(held && sessionOf(held))
    auth.emit('signed_out', { status: 'signed_out', user: null })
  }

  async function signedIn(pair: TokenPair): Promise<Result<SignIn>> {
    storage.set(pair)
    const me = loadUser ? await readMe() : undefined
    const current = me?.ok ? me.data : null
    // Reading /me may have refreshed the pair, or ended it, and another tab's sign-in may have replaced it: the
    // other tabs are told of what this one holds now, and only while it is this sign-in's session.
    const held = storage.get()
    if (held && sameSession(held, pair)) {
      tabs.signedIn(held, current)
      auth.emit('signed_in', { status: 'signed_in', user: current })
    }
    return ok({ step: 'signed_in', user: current })
  }

  /** Whether the tab starts signed in: its own stored pair, or one handed over by an open tab; then `initial_session`. */
  async function start(): Promise<AuthSnapshot> {
    let current: User | null = null
    if (!storage.get()) current = (await tabs.askForSession(handoffMs))?.user ?? null
    if (storage.get() && !current && loadUser) {
      const me = await readMe()
      if (me.ok) current = me.data
    }
    // A sign-in or sign-out in the meantime already said where the tab stands.
    if (auth.getSnapshot().status === 'loading') auth.emit('initial_session', { status: storage.get() ? 'signed_in' : 'signed_out', user: current })
    else auth.emit('initial_session')
    return auth.getSnapshot()
  }

  return {
    auth,
    call,
    user,
    ready: start(),
    signedOut,
    /** A sign-in route's answer: tokens kept and told, or the 403 that asks for a second factor as a value. */
    async signIn(answer: Result<TokenPair>): Promise<Result<SignIn>> {
      if (answer.ok) return signedIn(answer.data)
      const { error } = answer
      const body = error.kind === 'http' && error.status === 403 && error.code === 'mfa_required' ? (error.body as Partial<MfaRequired>) : undefined
      if (typeof body?.mfa_token === 'string') return ok({ step: 'mfa_required', mfa_token: body.mfa_token, methods: body.methods ?? [] })
      return answer
    },
    /** A user body from the service that differs from the cached one: kept, and told to listeners and the other tabs. */
    userUpdated(next: User) {
      const { status, user } = auth.getSnapshot()
      if (status !== 'signed_in' || JSON.stringify(user) === JSON.stringify(next)) return
      // An answer that left before another account signed in (here or in another tab) is not about this one.
      if (user !== null && user.id !== next.id) return
      tabs.userUpdated(next)
      auth.emit('user_updated', { user: next })
    },
    /** Rotates the pair now; without a session, the 401 a call would get. */
    async refresh(): Promise<Result<void>> {
      const pair = storage.get()
      if (!pair) return failed(NOT_SIGNED_IN)
      const next = await refresh(pair)
      return next.ok ? ok(undefined) : next
    },
    close: tabs.close,
  }
}
