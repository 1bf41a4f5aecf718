import { afterAll, beforeAll, expect, test } from 'bun:test'
import fc from 'fast-check'
import { setAdmin } from '../src/users/service'
import { createTestApp, type TestApp } from './support/app'

/**
 * Hostile requests to every route of the OpenAPI spec (new routes are covered without touching this
 * file): generated bodies, query strings, path values and headers, with and without a valid token.
 * Whatever is sent: never a 5xx, a 4xx always in the contract's shape, never a stack trace, never slow.
 * Replay a failure with FUZZ_SEED=<seed>; FUZZ_RUNS sets how many requests are sent.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const RUNS = Number(process.env.FUZZ_RUNS ?? 400)
// Generous for one in-process request; the stalls this guards against took seconds.
const TIME_BOUND_MS = 1_000

type Route = { method: string; path: string; fields: string[] }

let t: TestApp
let routes: Route[]
let user: Awaited<ReturnType<TestApp['registerUser']>>
let other: Awaited<ReturnType<TestApp['registerUser']>>
let admin: Awaited<ReturnType<TestApp['registerUser']>>

beforeAll(async () => {
  // Limits high enough that registrations for fresh users are not throttled; 429s are still in the mix.
  t = await createTestApp({ label: 'fuzz', env: { REGISTRATIONS_PER_ADDRESS: '100000', MAX_BODY_BYTES: '262144' } })
  const spec = await t.call('GET', '/api/users/swagger/json')
  routes = Object.entries(spec.body.paths as Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: object } }> } }>>).flatMap(
    ([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        fields: Object.values(operation.requestBody?.content ?? {}).flatMap((media) => Object.keys(media.schema?.properties ?? {})),
      })),
  )
  user = await t.registerUser()
  other = await t.registerUser()
  // The admin routes answer every other caller with 403: an admin's token reaches their handlers.
  admin = await t.registerUser()
  await setAdmin(t.deps, admin.email, true)
}, 60_000)
afterAll(() => t.close())

// The body fields of the service, whether or not the spec lists them, and keys that reach a prototype.
const KNOWN_FIELDS = ['email', 'password', 'full_name', 'refresh', 'current_password', 'profile_pic', 'access', 'reason']
const POLLUTING_KEYS = ['__proto__', 'constructor', 'prototype']

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.oneof(fc.constant('\u0000'), loneSurrogate, fc.constant('😀'), fc.constant('a')) }),
  fc.constantFrom('', ' ', '\u0000', 'ab\u0000cd', 'ab\ud800cd', '\udfff', '😀😀😀😀', 'A@B.C', 'a@b.c', 'null', '{}', '[]'),
  fc.integer({ min: 1_000, max: 100_000 }).map((n) => 'x'.repeat(n)),
)
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
  fc.jsonValue({ maxDepth: 4 }),
)

const deepText = fc
  .tuple(fc.integer({ min: 20, max: 20_000 }), fc.constantFrom('[', '{"a":'), fc.constantFrom(...KNOWN_FIELDS))
  .map(([levels, open, field]) => `{"${field}": ${open.repeat(levels)}1${(open === '[' ? ']' : '}').repeat(levels)}}`)

const jsonBody = (fields: string[]) =>
  fc.oneof(
    fc.dictionary(fc.constantFrom(...new Set([...fields, ...KNOWN_FIELDS, ...POLLUTING_KEYS])), hostileValue, { maxKeys: 5 }).map((body) => JSON.stringify(body)),
    deepText,
    fc.string(),
    fc.constantFrom('', '{', 'null', '[1,2]', '"str"', '12', '{"__proto__": {"is_admin": true}}', '{"constructor": {"prototype": {"x": 1}}}'),
  )

type Body = { kind: 'json'; text: string; contentType: string } | { kind: 'form'; fields: [string, string][] } | { kind: 'none' }
const body = (fields: string[]): fc.Arbitrary<Body> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('json' as const),
      text: jsonBody(fields),
      contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'multipart/form-data', 'application/x-www-form-urlencoded', ''),
    }),
    fc.record({
      kind: fc.constant('form' as const),
      fields: fc.array(fc.tuple(fc.constantFrom(...KNOWN_FIELDS, ...POLLUTING_KEYS), fc.oneof(hostileString, deepText)), { maxLength: 4 }),
    }),
    fc.constant({ kind: 'none' as const }),
  )

// A lone surrogate cannot be percent-encoded (UTF-8 has no bytes for it); `percentGarbage` sends its bytes.
const encode = (value: string) => encodeURIComponent(value.toWellFormed())
const percentGarbage = fc.constantFrom('%', '%zz', '%00', '%ED%A0%80', '%E0%A4%A', '%C0%AF', '..', '%2e%2e', '%2F', '%FF')
const pathValue = fc.oneof(
  fc.constantFrom('SELF', 'SELF_UPPER', 'OTHER', 'OTHER_UPPER', 'SID', 'SID_UPPER'),
  fc.uuid(),
  fc.string().map(encode),
  percentGarbage,
  fc.integer({ min: 100, max: 5_000 }).map((n) => 'a'.repeat(n)),
)
const query = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(
        fc.constantFrom('ids', 'search', 'page', 'page_size', 'user', 'type', '__proto__', 'x'),
        fc.oneof(hostileString.map(encode), percentGarbage, fc.constantFrom('1', '0', '-1', '101', '1e9', 'SELF,OTHER')),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => `?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`),
)
const auth = fc.constantFrom('valid', 'admin', 'none', 'bearer', 'refresh', 'garbage', 'empty', 'three-dots', 'huge')
const host = fc.constantFrom('localhost', 'x', 'ab', 'a.b', '[::1]', 'users.test:8080', '127.0.0.1')

const request = () =>
  fc.constantFrom(...routes).chain((route) =>
    fc.record({ route: fc.constant(route), body: body(route.fields), id: pathValue, query, auth, host, requestId: fc.option(fc.string()) }),
  )

function authorization(kind: string): string | undefined {
  switch (kind) {
    case 'valid':
      return `JWT ${user.access}`
    case 'admin':
      return `JWT ${admin.access}`
    case 'bearer':
      return `Bearer ${user.access}`
    case 'refresh':
      return `JWT ${user.refresh}`
    case 'garbage':
      return 'JWT \u00ff\u00fe'
    case 'empty':
      return 'JWT '
    case 'three-dots':
      return 'JWT a.b.c'
    case 'huge':
      return `JWT ${'a'.repeat(8_000)}`
    default:
      return undefined
  }
}

async function pathValueOf(kind: string) {
  const sid = async () => ((await t.call('GET', '/api/users/sessions/', { token: user.access })).body as { id: string }[] | undefined)?.[0]?.id ?? crypto.randomUUID()
  switch (kind) {
    case 'SELF':
      return user.id
    case 'SELF_UPPER':
      return user.id.toUpperCase()
    case 'OTHER':
      return other.id
    case 'OTHER_UPPER':
      return other.id.toUpperCase()
    case 'SID':
      return sid()
    case 'SID_UPPER':
      return (await sid()).toUpperCase()
    default:
      return kind
  }
}

function checkShape(status: number, text: string) {
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/)
  if (status < 400) return
  const parsed = JSON.parse(text) as unknown
  expect(parsed).toBeObject()
  const fields = parsed as Record<string, unknown>
  const isDetail = typeof fields.detail === 'string' && typeof fields.code === 'string' && Object.keys(fields).length === 2
  const isFieldDict =
    Object.keys(fields).length > 0 && Object.values(fields).every((messages) => Array.isArray(messages) && messages.every((message) => typeof message === 'string'))
  if (!isDetail && !isFieldDict) throw new Error(`not the contract's error shape: ${text.slice(0, 300)}`)
}

test(
  'no generated request to any route gets a 5xx, a shapeless error, a stack trace or a slow answer',
  async () => {
    expect(routes.length).toBeGreaterThan(10)
    const property = fc.asyncProperty(request(), async (generated) => {
      const { route, body: sample } = generated
      const id = await pathValueOf(generated.id)
      const path = route.path.replace(/\{[^}]+\}/g, id).replace('*', id)
      const headers = new Headers()
      const token = authorization(generated.auth)
      if (token) headers.set('authorization', token)
      if (generated.requestId !== null) headers.set('x-request-id', encode(generated.requestId))
      let payload: RequestInit['body']
      if (sample.kind === 'json') {
        payload = sample.text
        if (sample.contentType) headers.set('content-type', sample.contentType)
      } else if (sample.kind === 'form') {
        const form = new FormData()
        for (const [name, value] of sample.fields) form.append(name, value)
        payload = form
      }
      const hasBody = route.method !== 'GET' && route.method !== 'HEAD'
      const url = `http://${generated.host}${path}${generated.query}`
      const started = performance.now()
      const response = await t.app.handle(new Request(url, { method: route.method, headers, body: hasBody ? payload : undefined }))
      const text = await response.text()
      const elapsed = performance.now() - started
      const where = `${route.method} ${url.slice(0, 200)} (${sample.kind}) → ${response.status} ${text.slice(0, 200)}`
      if (response.status >= 500) throw new Error(`5xx: ${where}`)
      if (elapsed > TIME_BOUND_MS) throw new Error(`took ${Math.round(elapsed)} ms: ${where}`)
      try {
        checkShape(response.status, text)
      } catch (error) {
        throw new Error(`${(error as Error).message}: ${where}`)
      }
      // A request that ended the caller's sessions or account: the next ones get a fresh user.
      if (response.status < 300 && ['DELETE', 'POST', 'PUT', 'PATCH'].includes(route.method) && token === `JWT ${user.access}`) user = await t.registerUser()
    })
    try {
      await fc.assert(property, { seed: SEED, numRuns: RUNS, endOnFailure: true })
    } catch (error) {
      console.error(`fuzz failed: replay with FUZZ_SEED=${SEED}`)
      throw error
    }
  },
  120_000,
)
