/**
 * A browser global, or undefined where there is none (a server, a worker, a test) or where reading it throws
 * (storage in a sandboxed frame): the client compiles under a browser's lib and runs outside one too.
 */
export function browserGlobal<T>(name: 'localStorage' | 'sessionStorage' | 'navigator' | 'document' | 'location' | 'history'): T | undefined {
  try {
    return ((globalThis as Record<string, unknown>)[name] ?? undefined) as T | undefined
  } catch {
    return undefined
  }
}
