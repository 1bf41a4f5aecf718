import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createTestApp } from './support/app'

let t: Awaited<ReturnType<typeof createTestApp>>
beforeAll(async () => {
  t = await createTestApp({ label: 'http', env: { MAX_BODY_BYTES: '2048', CORS_ALLOWED_ORIGINS: 'https://app.example.com' } })
})
afterAll(() => t.close())

const register = (body: string, headers: Record<string, string> = {}) =>
  t.call('POST', '/api/users/register/', { body, headers: { 'content-type': 'application/json', ...headers } })

describe('malformed requests get a 4xx in the contract shape, never a 500', () => {
  test('malformed JSON is a 400 parse_error', async () => {
    const response = await register('{"email": ')
    expect(response.status).toBe(400)
    expect(response.body.code).toBe('parse_error')
  })

  test('a body that is not an object names non_field_errors', async () => {
    const response = await register('[1, 2]')
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] })
  })

  test('a form or text body is a 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const response = await register('email=a', { 'content-type': type })
      expect(response.status).toBe(415)
      expect(response.body.code).toBe('unsupported_media_type')
    }
  })

  test('a body over the configured limit is a 413, declared or not', async () => {
    const big = JSON.stringify({ email: 'a@b.c', full_name: 'x'.repeat(4000), password: 'a-long-unusual-passphrase' })
    const declared = await register(big, { 'content-length': String(big.length) })
    expect(declared.status).toBe(413)
    expect(declared.body.code).toBe('request_too_large')
    const chunked = await t.app.handle(
      new Request('http://localhost/api/users/register/', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new Blob([big]).stream(),
      }),
    )
    expect(chunked.status).toBe(413)
  })

  test('an unknown route is a 404 in the contract shape', async () => {
    const response = await t.call('GET', '/api/nothing-here')
    expect(response.status).toBe(404)
    expect(response.body).toEqual({ detail: 'Not found.', code: 'not_found' })
  })

  test('no error body carries a stack trace', async () => {
    const user = await t.registerUser()
    const { sessions } = t.deps
    // A real unexpected error, thrown with its stack from inside a handler.
    const thrown = new Error('session list exploded')
    t.deps.sessions = { ...sessions, list: () => Promise.reject(thrown) }
    try {
      const response = await t.call('GET', '/api/users/sessions/', { token: user.access })
      expect(thrown.stack).toContain('at ')
      expect(response.status).toBe(500)
      expect(response.body).toEqual({ detail: 'Internal server error.', code: 'server_error' })
    } finally {
      t.deps.sessions = sessions
    }
  })
})

describe('OpenAPI and CORS', () => {
  test('the docs are served at the old swagger path, with every route in the spec', async () => {
    const page = await t.app.handle(new Request('http://localhost/api/users/swagger'))
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    const spec = await t.call('GET', '/api/users/swagger/json')
    expect(spec.status).toBe(200)
    const paths = Object.keys(spec.body.paths)
    for (const path of ['/api/users/register', '/api/users/login', '/api/users/refresh', '/api/users/me', '/api/users/update', '/api/users/{id}'])
      expect(paths).toContain(path)
    expect(spec.body.paths['/api/users/login'].post.summary).toBeString()
  })

  test('the spec asks for a token exactly on the routes behind the auth guard', async () => {
    const { body: spec } = await t.call('GET', '/api/users/swagger/json')
    expect(spec.security).toBeUndefined()
    const needsToken = (path: string, method: string) => spec.paths[path][method].security?.some((s: object) => 'JWT' in s) ?? false
    for (const [path, method] of [['/api/users/register', 'post'], ['/api/users/login', 'post'], ['/api/users/refresh', 'post'], ['/health/live', 'get'], ['/health/ready', 'get']])
      expect({ path, needsToken: needsToken(path!, method!) }).toEqual({ path, needsToken: false })
    for (const [path, method] of [['/api/users/me', 'get'], ['/api/users/update', 'put'], ['/api/users/{id}', 'delete'], ['/api/users/logout', 'post'], ['/api/users/sessions', 'get']])
      expect({ path, needsToken: needsToken(path!, method!) }).toEqual({ path, needsToken: true })
  })

  test('the docs page and its assets answer with and without a trailing slash, from the service itself', async () => {
    for (const path of ['/api/users/swagger', '/api/users/swagger/']) {
      const page = await t.app.handle(new Request(`http://localhost${path}`))
      expect(page.status).toBe(200)
      const html = await page.text()
      expect(html).not.toMatch(/https?:\/\//)
      expect(html).toContain('src="/api/users/swagger/swagger-ui-bundle.js"')
    }
    const bundle = await t.app.handle(new Request('http://localhost/api/users/swagger/swagger-ui-bundle.js'))
    expect(bundle.status).toBe(200)
    expect(bundle.headers.get('content-type')).toStartWith('text/javascript')
    expect(await bundle.text()).toContain('SwaggerUIBundle')
    const init = await (await t.app.handle(new Request('http://localhost/api/users/swagger/init.js'))).text()
    expect(init).toContain('"url":"/api/users/swagger/json"')
  })

  test('only configured origins are allowed', async () => {
    const preflight = (origin: string) =>
      t.app.handle(
        new Request('http://localhost/api/users/me/', {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
        }),
      )
    expect((await preflight('https://app.example.com')).headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect((await preflight('https://evil.example.com')).headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('string formats', () => {
  test('a uuid-looking id with a urn prefix is a 404, not a database error', async () => {
    const user = await t.registerUser()
    const response = await t.call('GET', `/api/users/urn:uuid:${user.id}/`, { token: user.access })
    expect(response.status).toBe(404)
  })
})
