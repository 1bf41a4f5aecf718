import { createHmac, createPrivateKey, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, errors, importJWK, jwtVerify, SignJWT, type JWK } from 'jose'
import type { Clock } from '../clock'

export type TokenType = 'access' | 'refresh'

/** The claims simplejwt issues (which the chat service reads), plus `sid`, the session a token belongs to. */
export type TokenClaims = {
  token_type: TokenType
  exp: number
  iat: number
  jti: string
  user_id: string
  sid: string
}

export type TokenPair = { access: string; refresh: string }

export type TokenSettings = {
  secret: string
  accessSeconds: number
  refreshSeconds: number
  audience?: string
  issuer?: string
  /** PKCS#8 PEM of an Ed25519 or P-256 key; when set, tokens are signed with it instead of the secret. */
  privateKeyPem?: string
  /** SPKI PEMs of retired keys: still served and accepted until the tokens they signed have expired. */
  previousPublicKeyPems?: string[]
}

export type Tokens = Awaited<ReturnType<typeof createTokens>>

type VerifyKey = { kid?: string; alg: string; key: CryptoKey }

/** Signs and verifies the service's JWTs; the algorithm is pinned, so `none` and algorithm confusion fail. */
export async function createTokens(settings: TokenSettings, clock: Clock) {
  const signing = await signingKey(settings)
  const verifyKeys = [signing.verify, ...(await Promise.all((settings.previousPublicKeyPems ?? []).map(publicVerifyKey)))]
  const algorithms = [...new Set(verifyKeys.map((key) => key.alg))]
  const keyFor = (kid: string | undefined) => verifyKeys.find((key) => key.kid === kid)?.key
  const lifetime = { access: settings.accessSeconds, refresh: settings.refreshSeconds }
  const hs256 = settings.privateKeyPem ? undefined : hs256Verifier(settings.secret, clock, settings)

  const sign = (type: TokenType, userId: string, sid: string, jti: string, iat: number) => {
    let token = new SignJWT({ token_type: type, user_id: userId, sid })
      .setProtectedHeader({ alg: signing.verify.alg, typ: 'JWT', ...(signing.verify.kid && { kid: signing.verify.kid }) })
      .setIssuedAt(iat)
      .setExpirationTime(iat + lifetime[type])
      .setJti(jti)
    if (settings.audience) token = token.setAudience(settings.audience)
    if (settings.issuer) token = token.setIssuer(settings.issuer)
    return token.sign(signing.key)
  }

  return {
    /** The public keys other services verify with (empty for HS256, whose secret is never published). */
    jwks: { keys: signing.jwks.concat(await Promise.all((settings.previousPublicKeyPems ?? []).map(publicJwk))) },

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

    /** The token's claims when it is genuine, unexpired, of the expected type and tied to a session; otherwise null. */
    async verify(token: string, expected: TokenType): Promise<TokenClaims | null> {
      const claims = (hs256 ? hs256(token) : await verifyWithJose(token)) as Partial<TokenClaims> | null
      // A token without `sid` (one the old service issued) cannot be revoked, so it is not accepted.
      if (!claims || claims.token_type !== expected || !isUuid(claims.user_id) || typeof claims.sid !== 'string') return null
      return claims as TokenClaims
    },
  }

  async function verifyWithJose(token: string) {
    try {
      const { payload } = await jwtVerify(token, (header) => keyFor(header.kid) ?? fail(), {
        algorithms,
        currentDate: new Date(clock.now()),
        audience: settings.audience,
        issuer: settings.issuer,
        requiredClaims: ['exp', 'iat', 'jti'],
      })
      return payload
    } catch (error) {
      if (error instanceof errors.JOSEError) return null
      throw error
    }
  }
}

/**
 * HS256 verification without WebCrypto's promise per call: on the hot path (every other service's every
 * request) a synchronous HMAC is several times cheaper. Same rules as jose's: the header must say HS256
 * (so `none` and algorithm confusion fail), the signature must match in constant time, `exp` must be in
 * the future, `nbf` (if any) past, `iat` and `jti` present, and `aud`/`iss` as configured.
 */
function hs256Verifier(secret: string, clock: Clock, settings: Pick<TokenSettings, 'audience' | 'issuer'>) {
  const key = Buffer.from(secret)
  return (token: string): Record<string, unknown> | null => {
    const [header, payload, signature, extra] = token.split('.')
    if (header === undefined || payload === undefined || signature === undefined || extra !== undefined) return null
    const parsedHeader = parseSegment(header)
    if (parsedHeader?.alg !== 'HS256' || parsedHeader.crit !== undefined) return null
    const expected = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url')
    if (signature.length !== expected.length || !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) return null
    const claims = parseSegment(payload)
    if (!claims) return null
    const now = clock.now() / 1000
    if (typeof claims.exp !== 'number' || claims.exp <= now) return null
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now)) return null
    if (typeof claims.iat !== 'number' || typeof claims.jti !== 'string') return null
    if (settings.issuer !== undefined && claims.iss !== settings.issuer) return null
    if (settings.audience !== undefined && ![claims.aud].flat().includes(settings.audience)) return null
    return claims
  }
}

function parseSegment(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}

const fail = (): never => {
  throw new errors.JWKSNoMatchingKey()
}

async function signingKey(settings: TokenSettings) {
  if (!settings.privateKeyPem) {
    // Imported once: jose would otherwise import a raw secret on every verification.
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(settings.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
    return { key, verify: { alg: 'HS256', key } as VerifyKey, jwks: [] as JWK[] }
  }
  const privateKey = createPrivateKey(settings.privateKeyPem)
  const publicKey = createPublicKey(privateKey)
  const alg = algorithmOf(publicKey)
  const jwk = await jwkOf(publicKey)
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK
  return {
    key: (await importJWK(privateJwk, alg)) as CryptoKey,
    verify: { kid: jwk.kid, alg, key: (await importJWK(jwk, alg)) as CryptoKey },
    jwks: [jwk],
  }
}

async function publicVerifyKey(pem: string): Promise<VerifyKey> {
  const publicKey = createPublicKey(pem)
  const alg = algorithmOf(publicKey)
  const jwk = await jwkOf(publicKey)
  return { kid: jwk.kid, alg, key: (await importJWK(jwk, alg)) as CryptoKey }
}

const publicJwk = (pem: string) => jwkOf(createPublicKey(pem))

/** EdDSA for Ed25519, ES256 for P-256; anything else is refused at start-up. */
export function algorithmOf(key: KeyObject): 'EdDSA' | 'ES256' {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new Error(`unsupported key type ${key.asymmetricKeyType}`)
}

// The kid is the key's RFC 7638 thumbprint: every instance, and a retired key's entry, derive the same one.
async function jwkOf(publicKey: KeyObject): Promise<JWK> {
  const jwk = publicKey.export({ format: 'jwk' }) as JWK
  const alg = algorithmOf(publicKey)
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' }
}

// simplejwt's jti format: a uuid4 as 32 hex digits.
const newJti = () => crypto.randomUUID().replaceAll('-', '')

// user_id goes into a uuid column; anything else must fail here, not in the database.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isUuid = (value: unknown) => typeof value === 'string' && UUID.test(value)
