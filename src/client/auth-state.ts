import type { User } from './types'

/**
 * `initial_session`: the client knows, once, whether it starts signed in. `signed_in`: a login (here or in
 * another tab). `signed_out`: a logout here or in another tab, or a session the service ended (a refused
 * refresh). `token_refreshed`: a new pair (the snapshot does not change). `user_updated`: the profile changed.
 */
export type AuthEvent = 'initial_session' | 'signed_in' | 'signed_out' | 'token_refreshed' | 'user_updated'

/** `loading` until the initial session is known; `user` is the cached `/me`, null while signed out or not yet read. */
export type AuthSnapshot = { readonly status: 'loading' | 'signed_in' | 'signed_out'; readonly user: User | null }

export type AuthListener = (event: AuthEvent, snapshot: AuthSnapshot) => void

/** The auth state, framework-neutral: `getSnapshot` returns the same object until the state changes. */
export type AuthStore = {
  getSnapshot(): AuthSnapshot
  subscribe(listener: AuthListener): () => void
}

export function createAuthStore() {
  let snapshot: AuthSnapshot = { status: 'loading', user: null }
  const listeners = new Set<AuthListener>()
  return {
    getSnapshot: () => snapshot,
    subscribe(listener: AuthListener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    /** Moves to `next` (a new snapshot only when something differs) and tells every listener. */
    emit(event: AuthEvent, next: Partial<AuthSnapshot> = {}) {
      const merged = { ...snapshot, ...next }
      if (merged.status !== snapshot.status || !sameUser(merged.user, snapshot.user)) snapshot = merged
      for (const listener of [...listeners]) {
        // One listener's bug must not keep the others, or the client, from the news.
        try {
          listener(event, snapshot)
        } catch (error) {
          queueMicrotask(() => {
            throw error
          })
        }
      }
    },
  }
}

const sameUser = (a: User | null, b: User | null) => a === b || (a !== null && b !== null && JSON.stringify(a) === JSON.stringify(b))
