// The practical ceiling of GET /me: verify the HS256 access token with jose, as the service does (the key
// imported once), and answer a user held in memory, with no session check and no database.
import { jwtVerify } from 'jose'

const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(process.env.SECRET_KEY), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
const user = { id: '0190a8a0-0000-7000-8000-000000000000', email: 'bench-user-0@example.com', full_name: 'Bench User 0', profile_pic: null }
const AUTHORIZATION = /^(?:JWT|Bearer) +(\S+)$/i

Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT),
  async fetch(request) {
    const token = request.headers.get('authorization')?.match(AUTHORIZATION)?.[1] ?? ''
    try {
      await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp', 'iat', 'jti'] })
      return Response.json(user)
    } catch {
      return Response.json({ detail: 'Given token not valid for any token type', code: 'token_not_valid' }, { status: 401 })
    }
  },
})
