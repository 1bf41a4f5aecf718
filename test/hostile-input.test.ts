import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { SERVER_BODY_LIMIT } from '../src/http/body'
import { createApp } from '../src/app'
import { setAdmin } from '../src/users/service'
import { capturingLogger, createTestApp, type TestApp } from './support/app'

// Each test here reproduces one finding of "hostile input and strangers" with its exact request.
let t: TestApp
const logs = capturingLogger('error')
beforeAll(async () => {
  t = await createTestApp({ label: 'hostile', logger: logs.logger, env: { CORS_ALLOWED_ORIGINS: 'https://app.example.com' } })
})
afterAll(() => t.close())

const nestedObject = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels)
const nestedArray = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)
const post = (path: string, body: string, token?: string) => t.call('POST', path, { body, token })

function multipart(fields: Record<string, string>, token: string) {
  const body = new FormData()
  for (const [name, value] of Object.entries(fields)) body.append(name, value)
  return t.app
    .handle(new Request('http://localhost/api/users/update/', { method: 'PATCH', headers: { authorization: `JWT ${token}` }, body }))
    .then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> }))
}

describe('deeply nested JSON is a 400 at once', () => {
  test.each([
    ['login, 12,000 nested objects in email', '/api/users/login/', `{"email": ${nestedObject(12_000)}, "password": "x"}`],
    ['login, 50,000 nested objects', '/api/users/login/', `{"email": ${nestedObject(50_000)}, "password": "x"}`],
    ['login, 6,000 nested arrays in email', '/api/users/login/', `{"email": ${nestedArray(6_000)}, "password": "x"}`],
    ['refresh, 6,000 nested arrays', '/api/users/refresh/', `{"refresh": ${nestedArray(6_000)}}`],
  ])('%s', async (_, path, body) => {
    const started = performance.now()
    const response = await post(path, body)
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ code: 'parse_error', detail: 'JSON parse error: the request body is nested deeper than 32 levels.' })
    // 7.4 s before; the scan is linear and takes about a millisecond.
    expect(performance.now() - started).toBeLessThan(500)
  })

  test('JSON nested up to the bound is parsed as usual (and fails validation by field)', async () => {
    const response = await post('/api/users/login/', `{"email": ${nestedObject(31)}, "password": "x"}`)
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ email: ['Not a valid string.'] })
  })

  test('a multipart part that looks like JSON stays a string, however deep', async () => {
    const user = await t.registerUser()
    const started = performance.now()
    const response = await multipart({ full_name: nestedArray(6_000), email: nestedObject(12_000) }, user.access)
    expect(response.status).toBe(400)
    expect(response.body).toEqual({
      email: ['Ensure this field has no more than 254 characters.'],
      full_name: ['Ensure this field has no more than 250 characters.'],
    })
    expect(performance.now() - started).toBeLessThan(500)
  })
})

describe('NUL and unpaired surrogates are a 400 naming the field', () => {
  const NUL = 'Null characters are not allowed.'

  test('in login, register and refresh bodies', async () => {
    expect(await t.call('POST', '/api/users/login/', { body: { email: 'ab\u0000cd', password: 'x' } })).toMatchObject({ status: 400, body: { email: [NUL] } })
    const register = (fields: Record<string, string>) =>
      t.call('POST', '/api/users/register/', { body: { email: 'nul@example.com', full_name: 'Ann', password: 'a-long-unusual-passphrase', ...fields } })
    expect(await register({ full_name: 'ab\u0000cd' })).toMatchObject({ status: 400, body: { full_name: [NUL] } })
    expect(await register({ full_name: 'ab\ud800cd' })).toMatchObject({ status: 400, body: { full_name: ['Surrogate characters are not allowed: U+D800.'] } })
    expect(await register({ password: 'abc\udfffdefghij' })).toMatchObject({ status: 400, body: { password: ['Surrogate characters are not allowed: U+DFFF.'] } })
    expect(await t.call('POST', '/api/users/refresh/', { body: { refresh: 'a\u0000b' } })).toMatchObject({ status: 400, body: { refresh: [NUL] } })
  })

  test('in updates, JSON and multipart, and nothing is stored', async () => {
    const user = await t.registerUser({ full_name: 'Unchanged' })
    const json = await t.call('PATCH', '/api/users/update/', { body: { full_name: 'ab\ud800cd' }, token: user.access })
    expect(json).toMatchObject({ status: 400, body: { full_name: ['Surrogate characters are not allowed: U+D800.'] } })
    expect(await multipart({ full_name: 'ab\u0000cd' }, user.access)).toEqual({ status: 400, body: { full_name: [NUL] } })
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.full_name).toBe('Unchanged')
    const logout = await t.call('POST', '/api/users/logout/', { body: { refresh: '\udc00' }, token: user.access })
    expect(logout).toMatchObject({ status: 400, body: { refresh: ['Surrogate characters are not allowed: U+DC00.'] } })
  })

  test('in a query string', async () => {
    const user = await t.registerUser()
    const response = await t.call('GET', '/api/users/?search=ab%00cd', { token: user.access })
    expect(response).toMatchObject({ status: 400, body: { search: [NUL] } })
  })

  test('bytes that are not UTF-8 are refused, not turned into U+FFFD', async () => {
    const body = new Uint8Array([...new TextEncoder().encode('{"email": "a'), 0xed, 0xa0, 0x80, ...new TextEncoder().encode('", "password": "x"}')])
    const response = await t.app.handle(
      new Request('http://localhost/api/users/login/', { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
    )
    expect(response.status).toBe(400)
    expect(((await response.json()) as { code: string }).code).toBe('parse_error')
  })
})

describe('lengths count characters, not UTF-16 units', () => {
  test('four emoji are a 4-character password; 250 emoji are a valid name', async () => {
    const short = await t.call('POST', '/api/users/register/', { body: { email: 'emoji@example.com', full_name: 'E', password: '😀😀😀😀' } })
    expect(short).toMatchObject({ status: 400, body: { password: ['Ensure this field has at least 8 characters.'] } })
    const user = await t.registerUser({ full_name: '😀'.repeat(250), password: '😀'.repeat(128) })
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).body.full_name).toBe('😀'.repeat(250))
    const long = await t.call('PATCH', '/api/users/update/', { body: { full_name: '😀'.repeat(251) }, token: user.access })
    expect(long).toMatchObject({ status: 400, body: { full_name: ['Ensure this field has no more than 250 characters.'] } })
  })
})

describe('a database error never writes query values to the log', () => {
  test('the argon2id hash and the email of a failed registration stay out of the error line', async () => {
    // A real Postgres error on the insert that carries the new password hash.
    await t.database.db.execute(sql`alter table users add constraint refuse_boom check (full_name <> 'Boom') not valid`)
    try {
      const response = await t.call('POST', '/api/users/register/', {
        body: { email: 'logged@example.com', full_name: 'Boom', password: 'a-long-unusual-passphrase' },
      })
      expect(response.status).toBe(500)
      const line = logs.lines.find((entry) => entry.msg === 'unhandled error' && JSON.stringify(entry).includes('refuse_boom'))
      expect(line).toBeDefined()
      const text = JSON.stringify(line)
      expect(text).toContain('DrizzleQueryError')
      expect(text).not.toContain('$argon2id')
      expect(text).not.toContain('logged@example.com')
    } finally {
      await t.database.db.execute(sql`alter table users drop constraint refuse_boom`)
    }
  })
})

describe('a user id is the same user in any case', () => {
  test("an admin's upper-case DELETE revokes the victim's tokens at once", async () => {
    const admin = await t.registerUser()
    await setAdmin(t.deps, admin.email, true)
    const victim = await t.registerUser()
    expect((await t.call('DELETE', `/api/users/${victim.id.toUpperCase()}/`, { token: admin.access })).status).toBe(204)
    expect((await t.call('GET', '/api/users/me/', { token: victim.access })).status).toBe(401)
    expect((await t.call('POST', '/api/users/refresh/', { body: { refresh: victim.refresh } })).status).toBe(401)
  })

  test('deleting yourself by the upper-case id is a 204, not a 403', async () => {
    const user = await t.registerUser()
    expect((await t.call('DELETE', `/api/users/${user.id.toUpperCase()}/`, { token: user.access })).status).toBe(204)
  })

  test('GET by the upper-case id sees a rename at once (one cache entry per user)', async () => {
    const reader = await t.registerUser()
    const other = await t.registerUser({ full_name: 'Before' })
    const path = `/api/users/${other.id.toUpperCase()}/`
    expect((await t.call('GET', path, { token: reader.access })).body).toMatchObject({ id: other.id, full_name: 'Before' })
    await t.call('PATCH', '/api/users/update/', { body: { full_name: 'After' }, token: other.access })
    expect((await t.call('GET', path, { token: reader.access })).body.full_name).toBe('After')
  })

  test('a session id in upper case ends that session', async () => {
    const user = await t.registerUser()
    const [session] = (await t.call('GET', '/api/users/sessions/', { token: user.access })).body as { id: string }[]
    expect((await t.call('DELETE', `/api/users/sessions/${session!.id.toUpperCase()}/`, { token: user.access })).status).toBe(204)
    expect((await t.call('GET', '/api/users/me/', { token: user.access })).status).toBe(401)
  })
})

describe('smaller ones', () => {
  test('a URL merely containing the docs path keeps the strict CSP', async () => {
    const response = await t.call('GET', '/api/users/me/?x=/api/users/swagger')
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'")
  })

  test.each(['x', 'ab', 'a.b', '[::1]'])('Host: %s routes as any other host', async (host) => {
    const response = await t.app.handle(new Request(`http://${host}/api/users/me/`))
    expect(response.status).toBe(401)
    expect((await t.app.handle(new Request(`http://${host}/health/live`))).status).toBe(200)
  })

  test('CORS: no credentials, a fixed list of readable headers, preflights cached for 10 minutes', async () => {
    const origin = 'https://app.example.com'
    const preflight = await t.app.handle(
      new Request('http://localhost/api/users/login/', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-evil' },
      }),
    )
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull()
    expect(preflight.headers.get('access-control-max-age')).toBe('600')
    const response = await t.app.handle(new Request('http://localhost/api/users/me/', { headers: { origin, 'x-evil': '1' } }))
    expect(response.headers.get('access-control-allow-origin')).toBe(origin)
    expect(response.headers.get('access-control-allow-credentials')).toBeNull()
    expect(response.headers.get('access-control-expose-headers')).toBe('Retry-After, X-Request-Id, WWW-Authenticate')
  })

  test("a body over every limit gets the contract's JSON 413 with the security headers, from a real server", async () => {
    const server = createApp(t.deps).listen({ port: 0, hostname: '127.0.0.1', maxRequestBodySize: SERVER_BODY_LIMIT })
    try {
      // A raw request declaring 200 MiB (over Bun's default hard limit of 128 MiB) and sending a little of it:
      // the answer must come from the declared length, before the body is read. A real client streaming the
      // whole body could see the connection closed under it instead of the answer.
      const raw = await rawExchange(
        server.server!.port!,
        `POST /api/users/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${200 * 1024 * 1024}\r\n\r\n{"email":`,
      )
      const [head, body] = raw.split('\r\n\r\n', 2) as [string, string]
      expect(head).toStartWith('HTTP/1.1 413')
      expect(head.toLowerCase()).toContain('x-content-type-options: nosniff')
      expect(body).toContain('"code":"request_too_large"')
    } finally {
      await server.stop(true)
    }
  })
})

/** Sends `request` as is and collects what the server answers until it closes or goes quiet. */
function rawExchange(port: number, request: string) {
  return new Promise<string>((resolve, reject) => {
    let received = ''
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(request))
    const done = () => {
      socket.destroy()
      resolve(received)
    }
    socket.setTimeout(2_000, done)
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8')
      // The whole JSON body has arrived once its closing brace has.
      if (/\r\n\r\n[\s\S]*\}$/.test(received)) done()
    })
    socket.on('end', done)
    socket.on('error', (error) => (received ? done() : reject(error)))
  })
}
