import { errors, jwtVerify, SignJWT } from 'jose'
import type { Clock } from '../clock'

export type TokenType = 'access' | 'refresh'

/** The claims simplejwt issues (which the chat service reads), plus `sid`, the session a token belongs to. */
export type TokenClaims = {
  token_type: TokenType
  exp: number
  iat: number
  jti: string
  user_id: string
  // Absent from tokens the old Django service issued.
  sid?: string
}

export type TokenPair = { access: string; refresh: string }

export type TokenSettings = {
  secret: string
  accessSeconds: number
  refreshSeconds: number
  audience?: string
  issuer?: string
}

export type Tokens = ReturnType<typeof createTokens>

const ALGORITHM = 'HS256'

/** Signs and verifies the service's JWTs; the algorithm is pinned, so `none` and algorithm confusion fail. */
export function createTokens(settings: TokenSettings, clock: Clock) {
  const key = new TextEncoder().encode(settings.secret)
  const lifetime = { access: settings.accessSeconds, refresh: settings.refreshSeconds }

  const sign = (type: TokenType, userId: string, sid: string, jti: string, iat: number) => {
    let token = new SignJWT({ token_type: type, user_id: userId, sid })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setIssuedAt(iat)
      .setExpirationTime(iat + lifetime[type])
      .setJti(jti)
    if (settings.audience) token = token.setAudience(settings.audience)
    if (settings.issuer) token = token.setIssuer(settings.issuer)
    return token.sign(key)
  }

  return {
    /** A new access and refresh token for one session; `refreshJti` identifies the refresh token for rotation. */
    async issuePair(userId: string, sid: string) {
      const iat = Math.floor(clock.now() / 1000)
      const refreshJti = newJti()
      const [access, refresh] = await Promise.all([
        sign('access', userId, sid, newJti(), iat),
        sign('refresh', userId, sid, refreshJti, iat),
      ])
      return { pair: { access, refresh } satisfies TokenPair, refreshJti }
    },

    /** The token's claims when it is genuine, unexpired and of the expected type; otherwise null. */
    async verify(token: string, expected: TokenType): Promise<TokenClaims | null> {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [ALGORITHM],
          currentDate: new Date(clock.now()),
          audience: settings.audience,
          issuer: settings.issuer,
          requiredClaims: ['exp', 'iat', 'jti'],
        })
        const claims = payload as Partial<TokenClaims>
        if (claims.token_type !== expected || !isUuid(claims.user_id)) return null
        return claims as TokenClaims
      } catch (error) {
        if (error instanceof errors.JOSEError) return null
        throw error
      }
    },
  }
}

// simplejwt's jti format: a uuid4 as 32 hex digits.
const newJti = () => crypto.randomUUID().replaceAll('-', '')

// user_id goes into a uuid column; anything else must fail here, not in the database.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isUuid = (value: unknown) => typeof value === 'string' && UUID.test(value)
