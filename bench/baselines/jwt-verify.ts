// The ceiling of GET /me: the fastest correct check of the service's HS256 access token, then a user from
// a Map; no session check, no database, no framework. It verifies as src/sessions/tokens.ts does, with a
// synchronous HMAC (WebCrypto would queue on Bun's thread pool and flatter the service): the header must
// say HS256, the signature must match in constant time, `exp` must be ahead and `token_type` must be access.
import { createHmac, timingSafeEqual } from 'node:crypto'

const key = Buffer.from(process.env.SECRET_KEY!)
// The user the harness's token names; any other id is unknown, as it would be to the service.
const userId = process.env.BENCH_USER_ID!
const users = new Map([[userId, { id: userId, email: 'bench-user-0@example.com', full_name: 'Bench User 0', profile_pic: null }]])
const AUTHORIZATION = /^(?:JWT|Bearer) +([\w-]+\.[\w-]+\.[\w-]*)$/i
const notValid = () => Response.json({ detail: 'Given token not valid for any token type', code: 'token_not_valid' }, { status: 401 })

function verify(token: string) {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const parse = (segment: string) => {
    try {
      return JSON.parse(Buffer.from(segment, 'base64url').toString()) as Record<string, unknown>
    } catch {
      return null
    }
  }
  if (parse(header)?.alg !== 'HS256') return null
  const expected = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url')
  if (signature.length !== expected.length || !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) return null
  const claims = parse(payload)
  if (typeof claims?.exp !== 'number' || claims.exp <= Date.now() / 1000 || claims.token_type !== 'access') return null
  return claims
}

Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT),
  fetch(request) {
    const token = request.headers.get('authorization')?.match(AUTHORIZATION)?.[1]
    const claims = token ? verify(token) : null
    const user = claims && users.get(claims.user_id as string)
    return user ? Response.json(user) : notValid()
  },
})
