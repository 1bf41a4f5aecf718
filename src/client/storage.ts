import { browserGlobal } from './globals'
import type { TokenPair } from './types'

/** Where the client keeps its token pair. An `access` of '' means "unknown": the client refreshes before using it. */
export type TokenStorage = { get(): TokenPair | null; set(pair: TokenPair | null): void }

/** The Web Storage methods the adapters use (`localStorage`, `sessionStorage`). */
export type WebStorage = { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void }

/** Tokens in memory only: gone on reload (another open tab hands them back over the channel). */
export function memoryStorage(initial: TokenPair | null = null): TokenStorage {
  let pair = initial
  return {
    get: () => pair,
    set: (next) => {
      pair = next
    },
  }
}

/**
 * The default in a browser: the access token in memory only, the refresh token in this tab's
 * `sessionStorage`. A reload keeps the session (one refresh brings a new access token), closing the tab
 * ends it there, and a new tab gets the pair from an open one over the BroadcastChannel. An injected
 * script can still read the refresh token, as it can from any storage a page's script reaches (docs/security.md).
 */
export function sessionStorageAdapter(key = 'users-service.refresh', store: WebStorage | undefined = browserGlobal('sessionStorage')): TokenStorage {
  let access = ''
  return {
    get() {
      const refresh = read(() => store?.getItem(key))
      return refresh ? { access, refresh } : null
    },
    set(pair) {
      access = pair?.access ?? ''
      read(() => (pair ? store?.setItem(key, pair.refresh) : store?.removeItem(key)))
    },
  }
}

/**
 * Opt-in: the whole pair in `localStorage` (or another Web Storage) under one key. It survives closing the
 * browser and is shared by every tab, and any script running on the origin can read and send it away.
 */
export function localStorageAdapter(key = 'users-service.tokens', store: WebStorage | undefined = browserGlobal('localStorage')): TokenStorage {
  return {
    get() {
      try {
        const pair = JSON.parse(store?.getItem(key) ?? 'null')
        return typeof pair?.access === 'string' && typeof pair.refresh === 'string' ? { access: pair.access, refresh: pair.refresh } : null
      } catch {
        return null
      }
    },
    set: (pair) => void read(() => (pair ? store?.setItem(key, JSON.stringify(pair)) : store?.removeItem(key))),
  }
}

/** `sessionStorage` in a page, memory elsewhere (a server, a worker, a test). */
export const defaultStorage = (): TokenStorage => (browserGlobal('sessionStorage') ? sessionStorageAdapter() : memoryStorage())

// Web Storage throws where the browser forbids it (a sandboxed frame, storage blocked): then there is nothing.
function read<T>(access: () => T): T | undefined {
  try {
    return access()
  } catch {
    return undefined
  }
}
