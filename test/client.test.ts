import { afterAll, afterEach, beforeAll, expect, expectTypeOf, test } from 'bun:test'
import {
  createUsersClient,
  localStorageAdapter,
  memoryStorage,
  sessionStorageAdapter,
  type AuthEvent,
  type ClientError,
  type Fetcher,
  type Result,
  type TokenPair,
  type User,
  type UsersClient,
  type UsersClientOptions,
  type WebStorage,
} from 'users-service/client'
import { setAdmin } from '../src/users/service'
import { createTestApp, type TestApp } from './support/app'
import { waitFor } from './support/wait'

// The package's own exports are imported, so `bun run typecheck` also checks them; a route whose
// types drift fails to compile here.
const ME = '/api/users/me'
const REFRESH = '/api/users/refresh'
const MINUTE = 60_000
// Past the default 15-minute access lifetime.
const EXPIRED = 16 * MINUTE

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ label: 'client' })
})
afterAll(() => t.close())

const opened: UsersClient[] = []
afterEach(() => {
  for (const client of opened.splice(0)) client.close()
})

/** A fetcher into the in-process app that records each request; refresh calls wait for `hold()` first. */
function recorder(hold?: () => Promise<unknown>) {
  const requests: { path: string; authorization: string | null }[] = []
  const fetcher: Fetcher = async (url, init) => {
    const path = new URL(url).pathname
    requests.push({ path, authorization: new Headers(init.headers).get('authorization') })
    if (path === REFRESH) await hold?.()
    return t.app.handle(new Request(url, init))
  }
  return { fetcher, requests, refreshes: () => requests.filter((request) => request.path === REFRESH).length }
}

function open(options: Partial<UsersClientOptions> = {}) {
  const client = createUsersClient({ baseUrl: 'http://localhost', now: t.clock.now, ...options })
  opened.push(client)
  return client
}

const newUser = () => ({ email: `client-${crypto.randomUUID()}@example.com`, full_name: 'Client User', password: 'a-long-unusual-passphrase' })

/** A client that has just registered, with its recorder emptied. */
async function loggedIn(options: Partial<UsersClientOptions> = {}) {
  const calls = recorder()
  const client = open({ fetcher: calls.fetcher, ...options })
  const registered = await client.register(newUser())
  if (!registered.ok) throw new Error(`register failed: ${JSON.stringify(registered.error)}`)
  calls.requests.length = 0
  return { client, calls }
}

/** 'ok', the service's status, or why no answer came: one value to compare. */
const outcome = (result: Result<unknown>) => (result.ok ? 'ok' : result.error.kind === 'http' ? result.error.status : result.error.kind)

const newChannel = () => `tabs-${crypto.randomUUID()}`

/** One session in a browser: its tabs share the channel and start from the same pair, each in its own memory. */
async function browser() {
  const { access, refresh } = await t.registerUser()
  const channel = newChannel()
  // No /me at start: these tests count every request.
  const tab = (options: Partial<UsersClientOptions> = {}) => open({ channel, storage: memoryStorage({ access, refresh }), loadUser: false, ...options })
  return { channel, tab }
}

/** The next message on a channel, as every tab on it receives it. */
const nextMessage = (name: string) =>
  new Promise<void>((resolve) => {
    const channel = new BroadcastChannel(name)
    channel.onmessage = () => {
      channel.close()
      resolve()
    }
  })

const webStorage = (): WebStorage => {
  const items = new Map<string, string>()
  return { getItem: (key) => items.get(key) ?? null, setItem: (key, value) => void items.set(key, value), removeItem: (key) => void items.delete(key) }
}

test('calls through the client are typed by the server routes', async () => {
  const { client } = await loggedIn()
  const me = await client.me()
  expectTypeOf(me).toEqualTypeOf<Result<User>>()
  const email: string | undefined = me.ok ? me.data.email : undefined
  expect(email).toEndWith('@example.com')
  const sessions = await client.sessions.list()
  const current: boolean | undefined = sessions.ok ? sessions.data[0]?.current : undefined
  expect(current).toBe(true)
  // @ts-expect-error: login takes the route's body, which requires a password
  const incomplete: Parameters<typeof client.login>[0] = { email: 'ann@example.com' }
  expect(incomplete.email).toBe('ann@example.com')
})

test('requests carry the access token with the JWT scheme by default', async () => {
  const { client, calls } = await loggedIn()
  await client.me()
  expect(calls.requests).toEqual([{ path: ME, authorization: `JWT ${client.tokens!.access}` }])
})

test('the Bearer scheme can be chosen instead', async () => {
  const { client, calls } = await loggedIn({ scheme: 'Bearer' })
  expect(outcome(await client.me())).toBe('ok')
  expect(calls.requests[0]!.authorization).toBe(`Bearer ${client.tokens!.access}`)
})

test('twenty concurrent requests with an expired access token share exactly one refresh', async () => {
  const { client, calls } = await loggedIn()
  const before = client.tokens!
  t.clock.advance(EXPIRED)
  const responses = await Promise.all(Array.from({ length: 20 }, () => client.me()))
  expect(responses.map(outcome)).toEqual(Array(20).fill('ok'))
  expect(calls.refreshes()).toBe(1)
  expect(client.tokens!.refresh).not.toBe(before.refresh)
  expect(calls.requests.filter((request) => request.path === ME).every((request) => request.authorization === `JWT ${client.tokens!.access}`)).toBe(true)
})

test('an access token within the skew of its expiry is refreshed before the request', async () => {
  const { client, calls } = await loggedIn({ refreshSkewSeconds: 30 })
  t.clock.advance(15 * MINUTE - 20_000)
  expect(outcome(await client.me())).toBe('ok')
  expect(calls.requests.map((request) => request.path)).toEqual([REFRESH, ME])
})

test('a 401 is answered by one refresh and one retry', async () => {
  // The client's clock lags the server's, so it sends a token it believes fresh and the server refuses.
  const clientTime = t.clock.now()
  const { client, calls } = await loggedIn({ now: () => clientTime })
  t.clock.advance(EXPIRED)
  const me = await client.me()
  expect(outcome(me)).toBe('ok')
  expect(calls.requests.map((request) => request.path)).toEqual([ME, REFRESH, ME])
})

test('a revoked session ends in the logged-out callback, with the tokens forgotten', async () => {
  let loggedOut = 0
  const { client, calls } = await loggedIn({ onLoggedOut: () => loggedOut++ })
  // Ended from another device.
  await t.call('POST', '/api/users/logout-all/', { token: client.tokens!.access })
  const me = await client.me()
  expect(outcome(me)).toBe(401)
  expect(calls.requests.map((request) => request.path)).toEqual([ME, REFRESH])
  expect(loggedOut).toBe(1)
  expect(client.tokens).toBeNull()
})

test('a refresh that fails in transit keeps the tokens and does not log out', async () => {
  let loggedOut = 0
  const calls = recorder(() => Promise.reject(new Error('network down')))
  const { client } = await loggedIn({ fetcher: calls.fetcher, onLoggedOut: () => loggedOut++ })
  const before = client.tokens
  t.clock.advance(EXPIRED)
  expect(outcome(await client.me())).toBe(401)
  expect(loggedOut).toBe(0)
  expect(client.tokens).toEqual(before)
})

test('a request that brings its own Authorization is sent as it is, without a refresh', async () => {
  const { client, calls } = await loggedIn()
  t.clock.advance(EXPIRED)
  // A service passing on its own user's token, whatever the client holds.
  const user = await t.registerUser()
  const me = await client.me({ headers: { authorization: `Bearer ${user.access}` } })
  expect(me.ok && me.data.id).toBe(user.id)
  expect(calls.requests).toEqual([{ path: ME, authorization: `Bearer ${user.access}` }])
})

test('login keeps the pair it is given', async () => {
  const user = await t.registerUser()
  const client = open({ fetcher: recorder().fetcher })
  const login = await client.login({ email: user.email, password: user.password })
  expect(login).toEqual({ ok: true, data: { step: 'signed_in', user: expect.objectContaining({ id: user.id, email: user.email }) } })
  expect(client.tokens).not.toBeNull()
  const me = await client.me()
  expect(me.ok && me.data.id).toBe(user.id)
})

test('a failed login returns the field errors and keeps no tokens', async () => {
  const user = await t.registerUser()
  const client = open({ fetcher: recorder().fetcher })
  const login = await client.login({ email: user.email, password: 'not-the-password' })
  expect(login.ok || login.error).toMatchObject({
    kind: 'http',
    status: 400,
    fields: { email: ['Invalid email or password.'], password: ['Invalid email or password.'] },
  })
  expect(client.tokens).toBeNull()
})

test('logout ends the session on the server and forgets the tokens, without the logged-out callback', async () => {
  let loggedOut = 0
  const { client } = await loggedIn({ onLoggedOut: () => loggedOut++ })
  const { access } = client.tokens!
  expect(outcome(await client.logout())).toBe('ok')
  expect(client.tokens).toBeNull()
  expect(loggedOut).toBe(0)
  expect((await t.call('GET', '/api/users/me/', { token: access })).status).toBe(401)
})

test('logout with an expired access token refreshes first, so that the session does end', async () => {
  const { client, calls } = await loggedIn()
  const { refresh } = client.tokens!
  t.clock.advance(EXPIRED)
  expect(outcome(await client.logout())).toBe('ok')
  expect(calls.requests.map((request) => request.path)).toEqual([REFRESH, '/api/users/logout'])
  expect((await t.call('POST', '/api/users/refresh/', { body: { refresh } })).status).toBe(401)
})

test('logoutAll ends every session of the user', async () => {
  const { client } = await loggedIn()
  const me = await client.me()
  if (!me.ok) throw new Error('no /me')
  const elsewhere = open({ fetcher: recorder().fetcher })
  await elsewhere.login({ email: me.data.email!, password: newUser().password })
  const { access } = elsewhere.tokens!
  expect(outcome(await client.logoutAll())).toBe('ok')
  expect(client.tokens).toBeNull()
  expect((await t.call('GET', '/api/users/me/', { token: access })).status).toBe(401)
})

test('the localStorage adapter keeps the pair under its key across page loads', () => {
  const storage = webStorage()
  const pair: TokenPair = { access: 'a.b.c', refresh: 'd.e.f' }
  localStorageAdapter('tokens', storage).set(pair)
  expect(localStorageAdapter('tokens', storage).get()).toEqual(pair)
  expect(localStorageAdapter('other', storage).get()).toBeNull()
  localStorageAdapter('tokens', storage).set(null)
  expect(storage.getItem('tokens')).toBeNull()
})

test('the localStorage adapter reads a value it cannot understand as no tokens', () => {
  const storage = webStorage()
  const adapter = localStorageAdapter('tokens', storage)
  storage.setItem('tokens', '{not json')
  expect(adapter.get()).toBeNull()
  storage.setItem('tokens', '{"access":1}')
  expect(adapter.get()).toBeNull()
})

test('a login in one tab logs the other tabs in', async () => {
  const user = await t.registerUser()
  const channel = newChannel()
  const [first, second] = [open({ channel, fetcher: recorder().fetcher }), open({ channel, fetcher: recorder().fetcher })]
  await first.login({ email: user.email, password: user.password })
  await waitFor(() => second.tokens !== null, 'the other tab', 2_000, 5)
  expect(second.tokens).toEqual(first.tokens)
})

test('a tab adopts the pair another tab refreshed instead of refreshing itself', async () => {
  const calls = recorder()
  const { tab } = await browser()
  const [first, second] = [tab({ fetcher: calls.fetcher }), tab({ fetcher: calls.fetcher })]
  t.clock.advance(EXPIRED)
  expect(outcome(await first.me())).toBe('ok')
  await waitFor(() => second.tokens?.access === first.tokens?.access, 'the other tab', 2_000, 5)
  expect(outcome(await second.me())).toBe('ok')
  expect(calls.refreshes()).toBe(1)
})

test('two tabs that find the same access token expired refresh it once between them', async () => {
  let release = () => {}
  const held = new Promise<void>((resolve) => (release = resolve))
  const calls = recorder(() => held)
  const { channel, tab } = await browser()
  const [first, second] = [tab({ fetcher: calls.fetcher }), tab({ fetcher: calls.fetcher })]
  t.clock.advance(EXPIRED)
  const announced = nextMessage(channel)
  const firstMe = first.me()
  // The tabs' channels were opened before this listener's, and a channel delivers in that order: the second
  // tab has the announcement by now.
  await announced
  const secondMe = second.me()
  // A sleep on purpose: the assertion is that the second tab sends no refresh of its own in this time.
  await Bun.sleep(50)
  // The second tab waits for the first tab's refresh rather than sending its own.
  expect(calls.requests.map((request) => request.path)).toEqual([REFRESH])
  release()
  expect([outcome(await firstMe), outcome(await secondMe)]).toEqual(['ok', 'ok'])
  expect(calls.refreshes()).toBe(1)
  expect(second.tokens).toEqual(first.tokens)
})

test('a tab whose refreshing peer never reports back refreshes by itself after a wait', async () => {
  const calls = recorder()
  const { channel, tab } = await browser()
  // A tab closed in the middle of its refresh: the request never reaches the server.
  const closed = tab({ fetcher: recorder(() => new Promise(() => {})).fetcher })
  const survivor = tab({ fetcher: calls.fetcher })
  t.clock.advance(EXPIRED)
  const announced = nextMessage(channel)
  void closed.me()
  await announced
  const started = performance.now()
  expect(outcome(await survivor.me())).toBe('ok')
  expect(performance.now() - started).toBeGreaterThan(4_900)
  expect(calls.refreshes()).toBe(1)
}, 10_000)

test('a logout in one tab logs the other tabs out through their callback', async () => {
  let loggedOut = 0
  const { channel, tab } = await browser()
  const first = tab({ fetcher: recorder().fetcher })
  const second = tab({ fetcher: recorder().fetcher, onLoggedOut: () => loggedOut++ })
  await first.logout()
  await waitFor(() => second.tokens === null, 'the other tab', 2_000, 5)
  expect(loggedOut).toBe(1)
  // A tab already signed out is not told again (the channel delivers to the tabs' channels, opened first, first).
  const told = nextMessage(channel)
  await first.logout()
  await told
  expect(loggedOut).toBe(1)
})

test('tabs that share localStorage are told of a logout too', async () => {
  let loggedOut = 0
  const channel = newChannel()
  const storage = webStorage()
  const [first, second] = [
    open({ channel, fetcher: recorder().fetcher, storage: localStorageAdapter('tokens', storage) }),
    open({ channel, fetcher: recorder().fetcher, storage: localStorageAdapter('tokens', storage), onLoggedOut: () => loggedOut++ }),
  ]
  await first.register(newUser())
  await first.logout()
  await waitFor(() => loggedOut > 0, 'the other tab', 2_000, 5)
  expect(second.tokens).toBeNull()
  expect(loggedOut).toBe(1)
})

test('the client bundles for a browser with nothing but its own modules', async () => {
  const build = await Bun.build({ entrypoints: [new URL('../src/client/index.ts', import.meta.url).pathname], target: 'browser' })
  const sources = [...(await build.outputs[0]!.text()).matchAll(/^\/\/ (\S+)$/gm)].map((match) => match[1])
  expect(sources.length).toBeGreaterThan(3)
  expect(sources.filter((source) => !source?.startsWith('src/client/'))).toEqual([])
})

test('the auth state follows sign-in, refresh, profile changes and the own logout, with a snapshot stable between changes', async () => {
  const seen: [AuthEvent, string, string | null][] = []
  const client = open({ fetcher: recorder().fetcher })
  client.auth.subscribe((event, snapshot) => seen.push([event, snapshot.status, snapshot.user?.full_name ?? null]))
  expect(await client.ready).toEqual({ status: 'signed_out', user: null })
  await client.register(newUser())
  const signedIn = client.auth.getSnapshot()
  expect(client.auth.getSnapshot()).toBe(signedIn)
  expect(outcome(await client.refresh())).toBe('ok')
  expect(client.auth.getSnapshot()).toBe(signedIn)
  await client.me()
  expect(client.auth.getSnapshot()).toBe(signedIn)
  await client.updateProfile({ full_name: 'Renamed' })
  expect(client.auth.getSnapshot()).not.toBe(signedIn)
  await client.logout()
  expect(seen).toEqual([
    ['initial_session', 'signed_out', null],
    ['signed_in', 'signed_in', 'Client User'],
    ['token_refreshed', 'signed_in', 'Client User'],
    ['user_updated', 'signed_in', 'Renamed'],
    ['signed_out', 'signed_out', null],
  ])
})

test('onAuthStateChange starts with initial_session, and a client with a stored pair starts signed in with its user', async () => {
  const user = await t.registerUser()
  const client = open({ fetcher: recorder().fetcher, storage: memoryStorage({ access: user.access, refresh: user.refresh }) })
  const seen: string[] = []
  const unsubscribe = client.onAuthStateChange((event, snapshot) => seen.push(`${event}:${snapshot.status}:${snapshot.user?.id}`))
  await client.ready
  await waitFor(() => seen.length > 0, 'the initial session')
  expect(seen).toEqual([`initial_session:signed_in:${user.id}`])
  unsubscribe()
  await client.logout()
  expect(seen).toHaveLength(1)
})

test('a new tab is handed the session, and the user, by an open tab', async () => {
  const channel = newChannel()
  const first = open({ channel, fetcher: recorder().fetcher })
  await first.register(newUser())
  const calls = recorder()
  const second = open({ channel, fetcher: calls.fetcher })
  expect(await second.ready).toEqual({ status: 'signed_in', user: first.user })
  expect(second.tokens).toEqual(first.tokens)
  expect(calls.requests).toEqual([])
})

test('the sessionStorage adapter keeps only the refresh token; the access token is refreshed after a reload', async () => {
  const storage = webStorage()
  const calls = recorder()
  const before = open({ fetcher: calls.fetcher, storage: sessionStorageAdapter('tab', storage) })
  await before.register(newUser())
  expect(storage.getItem('tab')).toBe(before.tokens!.refresh)
  // A reload: the same sessionStorage, a new client whose memory is empty.
  calls.requests.length = 0
  const after = open({ fetcher: calls.fetcher, storage: sessionStorageAdapter('tab', storage) })
  expect((await after.ready).status).toBe('signed_in')
  expect(calls.requests.map((request) => request.path)).toEqual([REFRESH, ME])
})

test('a fetch that fails is kind network, one with no answer in time timeout, one the caller aborts aborted', async () => {
  const down = open({ fetcher: () => Promise.reject(new TypeError('Failed to fetch')) })
  const login = { email: 'ann@example.com', password: 'a-long-unusual-passphrase' }
  expect(await down.login(login)).toEqual({ ok: false, error: { kind: 'network', detail: expect.stringContaining('Failed to fetch') } })
  const hanging: Fetcher = (_url, init) => new Promise((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))
  const slow = open({ fetcher: hanging, timeoutMs: 50 })
  expect(outcome(await slow.login(login))).toBe('timeout')
  const patient = open({ fetcher: hanging })
  const abort = new AbortController()
  const pending = patient.login(login, { signal: abort.signal })
  abort.abort()
  expect(outcome(await pending)).toBe('aborted')
})

test('outside a browser, where there is no CORS, a fetch that fails once is kind network even when the service answers next', async () => {
  let attempts = 0
  // A dropped connection (a keep-alive socket the server closed), then the service answering again.
  const flaky: Fetcher = async (url, init) => (attempts++ === 0 ? Promise.reject(new TypeError('socket closed')) : t.app.handle(new Request(url, init)))
  const login = await open({ fetcher: flaky }).login({ email: 'ann@example.com', password: 'a-long-unusual-passphrase' })
  expect(login.ok || login.error.kind).toBe('network')
})

test('sessions, the directory, the security log and account deletion are calls of their own', async () => {
  const { client } = await loggedIn()
  const sessions = await client.sessions.list()
  if (!sessions.ok) throw new Error('no sessions')
  expect(sessions.data).toHaveLength(1)
  const other = await t.registerUser({ full_name: 'Zed Directory' })
  const page = await client.users.list({ ids: other.id })
  expect(page.ok && page.data.results.map((user) => user.full_name)).toEqual(['Zed Directory'])
  const profile = await client.users.get(other.id)
  expect(profile.ok && profile.data.email).toBeUndefined()
  const log = await client.securityLog()
  expect(log.ok && log.data.results.map((event) => event.type)).toContain('register')
  expect(outcome(await client.sessions.revoke('no-such-session'))).toBe(404)
  expect(outcome(await client.password.requestReset('nobody@example.com'))).toBe('ok')
  const gone = await client.deleteAccount()
  expect(outcome(gone)).toBe('ok')
  expect(client.auth.getSnapshot()).toEqual({ status: 'signed_out', user: null })
  expect(client.tokens).toBeNull()
})

test('a refresh without a session answers the 401 the service would, without asking it', async () => {
  const calls = recorder()
  const client = open({ fetcher: calls.fetcher })
  const result = await client.refresh()
  expect(result.ok || (result.error satisfies ClientError)).toMatchObject({ kind: 'http', status: 401, code: 'not_authenticated' })
  expect(calls.requests).toEqual([])
})

test('OIDC: the authorize URL, the redirect read back, and an exchange answering account_exists as a step', async () => {
  const client = open({ baseUrl: 'https://users.example.com/' })
  expect(client.oidc.authorizeUrl('git lab', 'https://app.example.com/oauth/done')).toBe(
    'https://users.example.com/api/users/oauth/git%20lab/authorize/?redirect_uri=https%3A%2F%2Fapp.example.com%2Foauth%2Fdone',
  )
  expect(client.oidc.takeRedirect('https://app.example.com/oauth/done?code=abc')).toEqual({ code: 'abc' })
  expect(client.oidc.takeRedirect('https://app.example.com/oauth/done?error=access_denied')).toEqual({ error: 'access_denied' })
  expect(client.oidc.takeRedirect('https://app.example.com/oauth/done')).toBeNull()

  const detail = 'An account uses this email: sign in to it and link the provider from settings.'
  const conflicted = open({
    fetcher: async () => new Response(JSON.stringify({ detail, code: 'account_exists' }), { status: 409, headers: { 'content-type': 'application/json' } }),
  })
  expect(await conflicted.oidc.exchange('abc')).toEqual({ ok: true, data: { step: 'account_exists', detail } })
  expect(conflicted.tokens).toBeNull()
  // A code the service does not know: the 400 names the field.
  expect(outcome(await open({ fetcher: recorder().fetcher }).oidc.exchange('no-such-code'))).toBe(400)
  // Signed in, the exchange carries the access token: a link's code links only for the user who started it.
  const { client: signedIn, calls } = await loggedIn()
  expect(outcome(await signedIn.oidc.exchange('no-such-code'))).toBe(400)
  expect(calls.requests.map((request) => [request.path, request.authorization?.split(' ')[0]])).toEqual([['/api/users/oauth/token', 'JWT']])
})

test('the admin API: find, disable, enable, log out and the audit, each answering a result; a non-admin gets 403', async () => {
  const account = newUser()
  const operator = open({ fetcher: recorder().fetcher })
  expect(outcome(await operator.register(account))).toBe('ok')
  const target = await t.registerUser({ full_name: 'Tess Target' })
  expect(outcome(await operator.admin.users({ search: target.email }))).toBe(403)
  await setAdmin(t.deps, account.email, true)

  const found = await operator.admin.users({ search: target.email })
  expect(found.ok && found.data.results.map((user) => [user.id, user.is_active])).toEqual([[target.id, true]])
  const disabled = await operator.admin.disable(target.id, 'spam')
  expect(disabled.ok && disabled.data.is_active).toBe(false)
  expect((await t.call('GET', ME, { token: target.access })).status).toBe(401)
  const enabled = await operator.admin.enable(target.id)
  expect(enabled.ok && enabled.data.is_active).toBe(true)
  expect(outcome(await operator.admin.logout(target.id))).toBe('ok')
  const audit = await operator.admin.audit({ user: target.id })
  expect(audit.ok && audit.data.results.map((event) => event.type)).toEqual(expect.arrayContaining(['account_disabled', 'account_enabled', 'admin_logout']))
  expect(outcome(await operator.admin.disable(crypto.randomUUID(), 'gone'))).toBe(404)
})

/**
 * Answers to `path` that come late: the service has handled the request (`handled`), the tab gets the answer at
 * `release()`. The first `onTime` answers to it are not held.
 */
function lateAnswers(path: string, onTime = 0) {
  let release = () => {}
  const released = new Promise<void>((resolve) => (release = resolve))
  let handled = () => {}
  const done = new Promise<void>((resolve) => (handled = resolve))
  const fetcher: Fetcher = async (url, init) => {
    const response = await t.app.handle(new Request(url, init))
    if (new URL(url).pathname !== path || onTime-- > 0) return response
    const body = await response.text()
    handled()
    await released
    return new Response(body, response)
  }
  return { fetcher, handled: done, release }
}

test("a tab that signed out is not signed back in by another tab's refresh that ended as it did", async () => {
  const late = lateAnswers(REFRESH)
  const { tab } = await browser()
  const [refreshing, leaving] = [tab({ fetcher: late.fetcher }), tab({ fetcher: recorder().fetcher })]
  const seen: string[] = []
  leaving.auth.subscribe((event, snapshot) => seen.push(`${event}:${snapshot.status}`))
  const refreshed = refreshing.refresh()
  // The service has rotated the pair; the other tab logs out before the answer, and its news, arrive.
  await late.handled
  expect(outcome(await leaving.logout())).toBe('ok')
  late.release()
  await refreshed
  await waitFor(() => refreshing.tokens === null, 'the refreshing tab signed out')
  // A sleep on purpose: the refreshing tab's news, if it sent any, has reached the other tab in this time.
  await Bun.sleep(50)
  expect(leaving.tokens).toBeNull()
  expect(seen).toEqual(['signed_out:signed_out'])
})

test("a sign-in in one tab is not undone by another tab's refresh of the old session that ended as it did", async () => {
  const late = lateAnswers(REFRESH)
  const { tab } = await browser()
  const [refreshing, signingIn] = [tab({ fetcher: late.fetcher }), tab({ fetcher: recorder().fetcher })]
  const refreshed = refreshing.refresh()
  await late.handled
  // Another account signs in in the second tab while the first tab's refresh answer is on its way.
  const other = await t.registerUser()
  expect(outcome(await signingIn.login({ email: other.email, password: other.password }))).toBe('ok')
  late.release()
  await refreshed
  await waitFor(() => refreshing.tokens?.refresh === signingIn.tokens?.refresh, 'the tabs on one session')
  // A sleep on purpose: any late news has reached both tabs in this time.
  await Bun.sleep(50)
  expect(signingIn.tokens).toEqual(refreshing.tokens)
  for (const client of [refreshing, signingIn]) {
    const me = await client.me()
    expect(me.ok && me.data.id).toBe(other.id)
  }
})

test('a logout of one session in a tab does not sign out the session another tab has just signed in to', async () => {
  const late = lateAnswers('/api/users/logout')
  const { tab } = await browser()
  const [leaving, signingIn] = [tab({ fetcher: late.fetcher }), tab({ fetcher: recorder().fetcher })]
  const loggedOut = leaving.logout()
  await late.handled
  // The old session is over on the service; another account signs in in the second tab, and the first tab
  // hears of it only once its logout is done.
  const other = await t.registerUser()
  expect(outcome(await signingIn.login({ email: other.email, password: other.password }))).toBe('ok')
  late.release()
  expect(outcome(await loggedOut)).toBe('ok')
  await waitFor(() => leaving.tokens !== null, 'the first tab handed the new session')
  // A sleep on purpose: the first tab's logout news has reached the second tab in this time.
  await Bun.sleep(50)
  expect(signingIn.tokens).toEqual(leaving.tokens)
  const me = await signingIn.me()
  expect(me.ok && me.data.id).toBe(other.id)
})

test("a profile read late, after another tab signed in to another account, does not become this tab's user", async () => {
  // The first /me is the tab's own, at start.
  const late = lateAnswers(ME, 1)
  const { tab } = await browser()
  const [reading, signingIn] = [tab({ fetcher: late.fetcher, loadUser: true }), tab({ fetcher: recorder().fetcher, loadUser: true })]
  await reading.ready
  const read = reading.me()
  await late.handled
  const other = await t.registerUser()
  expect(outcome(await signingIn.login({ email: other.email, password: other.password }))).toBe('ok')
  await waitFor(() => reading.user?.id === other.id, 'the other account in the first tab')
  late.release()
  expect(outcome(await read)).toBe('ok')
  expect(reading.auth.getSnapshot().user?.id).toBe(other.id)
})
