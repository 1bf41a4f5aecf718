import { createHmac, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, errors, importJWK, jwtVerify, SignJWT, type JWK } from 'jose'
import type { Clock } from '../clock'
import { isUuid } from '../http/formats'
import { algorithmOf } from '../key-algorithm'

export type TokenType = 'access' | 'refresh'

/** The claims simplejwt issues (which the chat service reads), plus `sid`, the session a token belongs to. */
export type TokenClaims = {
  token_type: TokenType
  exp: number
  iat: number
  jti: string
  user_id: string
  sid: string
  /** Refresh tokens: when the session's login happened (epoch seconds), carried through rotation; absent on tokens issued before it was added. */
  auth_time?: number
  /** How the session's login was proven (RFC 8176: `pwd`, `otp`, ...): only on sessions that used a second factor or a passkey; carried through rotation. */
  amr?: string[]
}

export type TokenPair = { access: string; refresh: string }

export type TokenSettings = {
  secret: string
  accessSeconds: number
  refreshSeconds: number
  /** A session's absolute lifetime from its login: no token of it expires later. */
  sessionMaxAgeSeconds?: number
  audience?: string
  issuer?: string
  /** PKCS#8 PEM of an Ed25519 or P-256 key; when set, tokens are signed with it instead of the secret. */
  privateKeyPem?: string
  /** SPKI PEMs of retired keys: still served and accepted until the tokens they signed have expired. */
  previousPublicKeyPems?: string[]
}

export type Tokens = Awaited<ReturnType<typeof createTokens>>

type Codec = {
  sign(claims: object): Promise<string>
  verify(token: string): Promise<Record<string, unknown> | null>
  /** HS256 only: the same check without a promise, for the guard that runs it on every request. */
  verifySync?: (token: string) => Record<string, unknown> | null
  jwks: JWK[]
}

/** Signs and verifies the service's JWTs; the algorithm is pinned, so `none` and algorithm confusion fail. */
export async function createTokens(settings: TokenSettings, clock: Clock) {
  const codec = settings.privateKeyPem ? await asymmetricCodec(settings.privateKeyPem, settings, clock) : hs256Codec(settings, clock)
  const lifetime = { access: settings.accessSeconds, refresh: settings.refreshSeconds }

  const sign = (type: TokenType, userId: string, sid: string, jti: string, iat: number, authTime: number, amr?: string[]) =>
    codec.sign({
      token_type: type,
      user_id: userId,
      sid,
      iat,
      exp: Math.min(iat + lifetime[type], authTime + (settings.sessionMaxAgeSeconds ?? Infinity)),
      jti,
      ...(type === 'refresh' && { auth_time: authTime }),
      ...(amr && { amr }),
      ...(settings.audience && { aud: settings.audience }),
      ...(settings.issuer && { iss: settings.issuer }),
    })

  return {
    /** The public keys other services verify with (empty for HS256, whose secret is never published). */
    jwks: { keys: codec.jwks },

    /**
     * A new access and refresh token for one session; `refreshJti` identifies the refresh token for rotation.
     * `authTime` is the session's login (epoch seconds; now for a new session): neither token outlives the
     * session's absolute end. `amr`, when given, goes into both (the old fleet ignores the extra claim).
     */
    async issuePair(userId: string, sid: string, authTime?: number, amr?: string[]) {
      const iat = Math.floor(clock.now() / 1000)
      const refreshJti = newJti()
      const [access, refresh] = await Promise.all([
        sign('access', userId, sid, newJti(), iat, authTime ?? iat, amr),
        sign('refresh', userId, sid, refreshJti, iat, authTime ?? iat, amr),
      ])
      return { pair: { access, refresh } satisfies TokenPair, refreshJti }
    },

    /** The token's claims when it is genuine, unexpired, of the expected type and tied to a session; otherwise null. */
    async verify(token: string, expected: TokenType): Promise<TokenClaims | null> {
      return checkClaims(await codec.verify(token), expected)
    },

    /** {@link verify} without a promise when the codec is synchronous (HS256); undefined for the asymmetric ones. */
    verifySync: codec.verifySync && ((token: string, expected: TokenType) => checkClaims(codec.verifySync!(token), expected)),
  }
}

function checkClaims(verified: Record<string, unknown> | null, expected: TokenType): TokenClaims | null {
  const claims = verified as Partial<TokenClaims> | null
  // A token without `sid` (one the old service issued) cannot be revoked, so it is not accepted;
  // user_id goes into a uuid column, so anything else must fail here, not in the database.
  if (!claims || claims.token_type !== expected || !isUuid(claims.user_id) || typeof claims.sid !== 'string') return null
  if (claims.auth_time !== undefined && !Number.isSafeInteger(claims.auth_time)) return null
  if (claims.amr !== undefined && !(Array.isArray(claims.amr) && claims.amr.every((method) => typeof method === 'string'))) return null
  return claims as TokenClaims
}

/**
 * Whether two strings are equal, in time that depends only on their length (which is public: an HS256
 * signature is always 43 characters). No buffers: the comparison runs on every authenticated request.
 */
export function constantTimeEqual(a: string, b: string) {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/**
 * HS256 with a synchronous HMAC instead of WebCrypto. Bun runs WebCrypto on the thread pool that also
 * runs argon2, so under login load every token check and signature queued behind argon2id hashes (GET /me
 * fell to a sixth); and on the hot path a synchronous HMAC is cheaper anyway. Verification keeps jose's
 * rules: the header must say HS256 (so `none` and algorithm confusion fail), the signature must match in
 * constant time, `exp` must be in the future, `nbf` (if any) past, `iat` and `jti` present, and
 * `aud`/`iss` as configured.
 */
function hs256Codec(settings: TokenSettings, clock: Clock): Codec {
  const key = Buffer.from(settings.secret)
  const mac = (input: string) => createHmac('sha256', key).update(input).digest('base64url')
  const signedHeader = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')

  const verify = (token: string): Record<string, unknown> | null => {
    const [header, payload, signature, extra] = token.split('.')
    if (header === undefined || payload === undefined || signature === undefined || extra !== undefined) return null
    // Every token this service issues carries exactly `signedHeader`: only another issuer's needs parsing.
    if (header !== signedHeader) {
      const parsedHeader = parseSegment(header)
      if (parsedHeader?.alg !== 'HS256' || parsedHeader.crit !== undefined) return null
    }
    if (!constantTimeEqual(signature, mac(`${header}.${payload}`))) return null
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

  return {
    jwks: [],
    async sign(claims) {
      const input = `${signedHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
      return `${input}.${mac(input)}`
    },
    verify: async (token) => verify(token),
    verifySync: verify,
  }
}

/** EdDSA or ES256 through jose, with a `kid`; retired public keys still verify the tokens they signed. */
async function asymmetricCodec(privateKeyPem: string, settings: TokenSettings, clock: Clock): Promise<Codec> {
  const privateKey = createPrivateKey(privateKeyPem)
  const current = await verifyKey(createPublicKey(privateKey))
  const signingKey = (await importJWK(privateKey.export({ format: 'jwk' }) as JWK, current.jwk.alg)) as CryptoKey
  const retired = await Promise.all((settings.previousPublicKeyPems ?? []).map((pem) => verifyKey(createPublicKey(pem))))
  const keys = [current, ...retired]
  const algorithms = [...new Set(keys.map((key) => key.jwk.alg!))]

  return {
    jwks: keys.map((key) => key.jwk),
    sign: (claims) =>
      new SignJWT({ ...claims }).setProtectedHeader({ alg: current.jwk.alg!, typ: 'JWT', kid: current.jwk.kid }).sign(signingKey),
    async verify(token) {
      try {
        const resolve = (header: { kid?: string }) => keys.find((key) => key.jwk.kid === header.kid)?.key ?? noKey()
        const { payload } = await jwtVerify(token, resolve, {
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
    },
  }
}

const noKey = (): never => {
  throw new errors.JWKSNoMatchingKey()
}

function parseSegment(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}


// The kid is the key's RFC 7638 thumbprint: every instance, and a retired key's entry, derive the same one.
async function verifyKey(publicKey: KeyObject) {
  const exported = publicKey.export({ format: 'jwk' }) as JWK
  const jwk: JWK = { ...exported, kid: await calculateJwkThumbprint(exported), alg: algorithmOf(publicKey), use: 'sig' }
  return { jwk, key: (await importJWK(jwk, jwk.alg)) as CryptoKey }
}

// simplejwt's jti format: a uuid4 as 32 hex digits.
const newJti = () => crypto.randomUUID().replaceAll('-', '')
