// Bundled by client.test.ts for its test page: the client as a web app uses it, with what the test reads
// (the auth events, the client) put on the window. `?api=` names the service; `?timeout=` the client's timeoutMs.
import { createUsersClient, type AuthEvent } from '../../src/client'

// The repo's tsconfig has no DOM lib: the page's two DOM reads are typed here.
const page = globalThis as unknown as {
  location: { search: string }
  document: { querySelector(selector: string): { files: File[] } }
}
const params = new URLSearchParams(page.location.search)
let clockOffsetMs = 0
const events: { event: AuthEvent; status: string; name: string | null }[] = []
const users = createUsersClient({
  baseUrl: params.get('api')!,
  timeoutMs: Number(params.get('timeout') ?? 30_000),
  // The test moves this tab's clock to bring its access token near expiry.
  now: () => Date.now() + clockOffsetMs,
})
users.auth.subscribe((event, snapshot) => events.push({ event, status: snapshot.status, name: snapshot.user?.full_name ?? null }))

Object.assign(globalThis, {
  users,
  events,
  setClockOffset: (ms: number) => (clockOffsetMs = ms),
  pictureFile: () => page.document.querySelector('#picture').files[0]!,
})
