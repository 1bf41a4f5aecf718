import { createPrivateKey, createPublicKey } from 'node:crypto'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { algorithmOf } from './key-algorithm'

/** A setting that cannot be used; the message names the variable. */
export class ConfigError extends Error {}

// Each variable is a string in the environment; `description` is what the one
// start-up error line says when the value does not fit.
const integer = (description: string, minimum = 1, maximum = 2 ** 31 - 1) =>
  Type.Optional(Type.String({ pattern: '^\\d+$', description, minimum, maximum }))
const duration = Type.Optional(
  Type.String({ pattern: '^[1-9]\\d*[smhd]?$', description: 'a duration such as 900, 15m, 12h or 14d' }),
)
const url = (schemes: string) =>
  Type.Optional(Type.String({ pattern: `^(${schemes})://`, description: `a URL starting with ${schemes.replaceAll('|', ' or ')}://` }))
const boolean = Type.Optional(Type.String({ pattern: '^(true|false|1|0|yes|no)$', description: 'true or false' }))
const text = (description = 'a non-empty value') => Type.Optional(Type.String({ minLength: 1, description }))

/**
 * OWASP's argon2id settings (p = 1), which it rates equal in defence: less memory is made up for with
 * more passes. A configured cost must reach at least one of them in both memory and passes.
 */
const OWASP_ARGON2ID = [
  { memoryKib: 47104, passes: 1 },
  { memoryKib: 19456, passes: 2 },
  { memoryKib: 12288, passes: 3 },
  { memoryKib: 9216, passes: 4 },
  { memoryKib: 7168, passes: 5 },
] as const

// OWASP's lowest-memory setting, Keycloak's default too: a hash in flight holds 7 MiB instead of 19, which
// kept the service under 150 MB under login load here (184 MB with 19 MiB), and hashes ~15% faster.
const DEFAULT_ARGON2 = OWASP_ARGON2ID.at(-1)!
const LEAST_ARGON2_MEMORY_KIB = Math.min(...OWASP_ARGON2ID.map((setting) => setting.memoryKib))

// HS256 keys shorter than the hash's 32-byte output weaken it (RFC 7518 §3.2); a short one is a mistake.
const MIN_SECRET_KEY_BYTES = 32

const Env = Type.Object({
  SECRET_KEY: text(`at least ${MIN_SECRET_KEY_BYTES} bytes of secret (openssl rand -base64 48 makes one)`),
  DATABASE_URL: url('postgres|postgresql'),
  POSTGRES_HOST: text(),
  POSTGRES_PORT: integer('a port number', 1, 65535),
  POSTGRES_DB: text(),
  POSTGRES_USER: text(),
  POSTGRES_PASSWORD: Type.Optional(Type.String()),
  DATABASE_CONNECT_TIMEOUT: duration,
  DATABASE_STATEMENT_TIMEOUT: duration,
  REDIS_URL: url('redis|rediss'),
  REDIS_CLUSTER_NODES: Type.Optional(
    Type.String({ pattern: '^rediss?://[^,\\s]+(,\\s*rediss?://[^,\\s]+)*$', description: 'comma-separated redis://host:port seed nodes of a Redis Cluster' }),
  ),
  AMQP_URL: url('amqp|amqps'),
  RABBITMQ_HOST: text(),
  RABBITMQ_PORT: integer('a port number', 1, 65535),
  RABBITMQ_DEFAULT_USER: text(),
  RABBITMQ_DEFAULT_PASS: Type.Optional(Type.String()),
  CURRENT_QUEUE: text(),
  QUEUE_LIST: Type.Optional(Type.String()),
  QUEUE_DURABLE: boolean,
  EVENTS_EXCHANGE: text(),
  OUTBOX_SWEEP_INTERVAL: duration,
  OUTBOX_MAX_ATTEMPTS: integer('an attempt count of at least 1', 1, 1000),
  OUTBOX_RETENTION: duration,
  USER_CACHE_TTL_SECONDS: integer('a number of seconds (0 turns the cache off)', 0, 3600),
  USER_CACHE_MAX_ENTRIES: integer('a number of users', 1),
  PUBLIC_URL: url('http|https'),
  PROFILE_PIC_MAX_BYTES: integer('a size in bytes', 1024),
  PROFILE_PIC_MAX_PIXELS: integer('a pixel count (width × height) from 1000000 to 100000000', 1_000_000, 100_000_000),
  PROFILE_PIC_MAX_SIDE: integer('a side in pixels from 64 to 4096', 64, 4096),
  S3_BUCKET: text(),
  S3_ENDPOINT: url('http|https'),
  S3_REGION: text(),
  S3_ACCESS_KEY_ID: text(),
  S3_SECRET_ACCESS_KEY: text(),
  S3_PUBLIC_URL: url('http|https'),
  HOST: text(),
  PORT: integer('a port number', 1, 65535),
  DATA_DIR: text(),
  ACCESS_TOKEN_LIFETIME: duration,
  REFRESH_TOKEN_LIFETIME: duration,
  JWT_AUDIENCE: text(),
  JWT_ISSUER: text(),
  JWT_PRIVATE_KEY: text(),
  JWT_PREVIOUS_PUBLIC_KEYS: text(),
  REFRESH_GRACE_SECONDS: integer('a number of seconds', 0, 300),
  // A brace would make part of the prefix every key's hash tag: one cluster slot for the whole deployment.
  REDIS_KEY_PREFIX: Type.Optional(Type.String({ minLength: 1, pattern: '^[^{}]*$', description: 'a non-empty value without { or }' })),
  TRUSTED_PROXY_HOPS: integer('the number of proxies in front of the service (0 trusts no X-Forwarded-For)', 0, 10),
  LOGIN_FAILURES_PER_ACCOUNT_ADDRESS: integer('a number of attempts'),
  LOGIN_FAILURES_PER_ACCOUNT: integer('a number of attempts'),
  LOGIN_FAILURES_PER_ADDRESS: integer('a number of attempts'),
  LOGIN_FAILURE_WINDOW: duration,
  REGISTRATIONS_PER_ADDRESS: integer('a number of attempts'),
  REGISTRATION_WINDOW: duration,
  CURRENT_PASSWORD_FAILURES_PER_USER: integer('a number of attempts'),
  MFA_CODE_FAILURES_PER_USER: integer('a number of attempts'),
  SESSION_MAX_AGE: duration,
  CORS_ALLOWED_ORIGINS: Type.Optional(Type.String()),
  MAX_BODY_BYTES: integer('a size in bytes', 1024),
  ARGON2_MEMORY_KIB: integer(`a memory cost in KiB, at least ${LEAST_ARGON2_MEMORY_KIB} (OWASP minimum)`, LEAST_ARGON2_MEMORY_KIB),
  ARGON2_TIME_COST: integer('an iteration count', 1, 100),
  SMTP_URL: url('smtp|smtps'),
  MAIL_FROM: text('a sender such as "Acme <no-reply@acme.test>"'),
  PRODUCT_NAME: text(),
  PASSWORD_RESET_URL: url('http|https'),
  EMAIL_VERIFY_URL: url('http|https'),
  MAIL_RETRY_MAX: duration,
  PASSWORD_RESET_TOKEN_LIFETIME: duration,
  EMAIL_VERIFY_TOKEN_LIFETIME: duration,
  REQUIRE_EMAIL_VERIFICATION: boolean,
  MAIL_REQUESTS_PER_ADDRESS: integer('a number of requests'),
  MAIL_REQUESTS_PER_EMAIL: integer('a number of requests'),
  MAIL_REQUEST_WINDOW: duration,
  MFA_ENCRYPTION_KEY: text(`at least ${MIN_SECRET_KEY_BYTES} bytes of secret, kept apart from SECRET_KEY`),
  WEBAUTHN_RP_ID: Type.Optional(Type.String({ pattern: '^[a-z0-9.-]+$', description: 'a domain such as example.com (no scheme or port)' })),
  WEBAUTHN_RP_NAME: text(),
  WEBAUTHN_ORIGINS: Type.Optional(Type.String({ pattern: '^\\s*https?://', description: 'comma-separated origins such as https://app.example.com' })),
  OIDC_PROVIDERS: text('a JSON list of {name, issuer, client_id, client_secret, scopes?}'),
  OAUTH_REDIRECT_URLS: Type.Optional(Type.String()),
  OIDC_ALLOW_HTTP: boolean,
  SECURITY_LOG_RETENTION_DAYS: integer('a number of days from 1 to 3650', 1, 3650),
  LOG_LEVEL: Type.Optional(Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('silent')], { description: 'one of debug, info, warn, error, silent' })),
})
type Env = Static<typeof Env>

/**
 * The service's settings, as loadConfig builds them: its return type is the one definition, so the type
 * and the parsing cannot drift. The environment's rules are the Env schema above.
 */
export type Config = ReturnType<typeof loadConfig>

/** The configuration a running service holds: a secret key always (main.ts generates one when none is set). */
export type ServiceConfig = Config & { secretKey: string }

/** The one reader of the environment: parses and checks every setting, or throws a ConfigError naming the variable. */
export function loadConfig(env: Record<string, string | undefined>) {
  const raw = pickDefined(env, Object.keys(Env.properties))
  const error = Value.Errors(Env, raw).First()
  if (error) {
    const name = error.path.slice(1)
    const schema = (Env.properties as Record<string, TSchema>)[name]
    throw new ConfigError(`${name}: expected ${schema?.description ?? 'a valid value'}`)
  }
  checkIntegerRanges(raw)
  if (raw.SECRET_KEY !== undefined && Buffer.byteLength(raw.SECRET_KEY) < MIN_SECRET_KEY_BYTES)
    throw new ConfigError(`SECRET_KEY: expected ${Env.properties.SECRET_KEY.description}`)
  if (raw.MFA_ENCRYPTION_KEY !== undefined && Buffer.byteLength(raw.MFA_ENCRYPTION_KEY) < MIN_SECRET_KEY_BYTES)
    throw new ConfigError(`MFA_ENCRYPTION_KEY: expected ${Env.properties.MFA_ENCRYPTION_KEY.description}`)
  const argon2 = argon2Cost(raw)
  return {
    secretKey: raw.SECRET_KEY,
    databaseUrl: raw.DATABASE_URL ?? postgresUrlFromParts(raw),
    // Short, so that a database outage answers 503 quickly instead of holding requests for postgres.js' 30 s.
    databaseTimeouts: {
      connectTimeoutSeconds: parseDuration(raw.DATABASE_CONNECT_TIMEOUT ?? '2s'),
      statementTimeoutSeconds: parseDuration(raw.DATABASE_STATEMENT_TIMEOUT ?? '5s'),
    },
    redisUrl: raw.REDIS_URL,
    // Takes the place of REDIS_URL when both are set: the same stores, on a cluster.
    redisClusterNodes: splitList(raw.REDIS_CLUSTER_NODES),
    amqpUrl: raw.AMQP_URL ?? amqpUrlFromParts(raw),
    currentQueue: raw.CURRENT_QUEUE,
    queueList: splitList(raw.QUEUE_LIST),
    queueDurable: parseBoolean(raw.QUEUE_DURABLE ?? 'true'),
    eventsExchange: raw.EVENTS_EXCHANGE ?? 'users',
    userCache: {
      ttlMs: Number(raw.USER_CACHE_TTL_SECONDS ?? 10) * 1000,
      maxEntries: Number(raw.USER_CACHE_MAX_ENTRIES ?? 50_000),
    },
    publicUrl: (raw.PUBLIC_URL ?? `http://localhost:${raw.PORT ?? 8000}`).replace(/\/+$/, ''),
    profilePicMaxBytes: Number(raw.PROFILE_PIC_MAX_BYTES ?? 5 * 1024 * 1024),
    profilePicMaxPixels: Number(raw.PROFILE_PIC_MAX_PIXELS ?? 50_000_000),
    profilePicMaxSide: Number(raw.PROFILE_PIC_MAX_SIDE ?? 1024),
    s3: raw.S3_BUCKET
      ? {
          bucket: raw.S3_BUCKET,
          endpoint: raw.S3_ENDPOINT,
          region: raw.S3_REGION,
          accessKeyId: raw.S3_ACCESS_KEY_ID,
          secretAccessKey: raw.S3_SECRET_ACCESS_KEY,
          publicUrl: raw.S3_PUBLIC_URL,
        }
      : undefined,
    outbox: {
      sweepIntervalMs: parseDuration(raw.OUTBOX_SWEEP_INTERVAL ?? '5s') * 1000,
      maxAttempts: Number(raw.OUTBOX_MAX_ATTEMPTS ?? 10),
      retentionMs: parseDuration(raw.OUTBOX_RETENTION ?? '7d') * 1000,
    },
    host: raw.HOST ?? '0.0.0.0',
    port: Number(raw.PORT ?? 8000),
    dataDir: raw.DATA_DIR ?? './data',
    accessTokenSeconds: parseDuration(raw.ACCESS_TOKEN_LIFETIME ?? '15m'),
    refreshTokenSeconds: parseDuration(raw.REFRESH_TOKEN_LIFETIME ?? '14d'),
    sessionMaxAgeSeconds: parseDuration(raw.SESSION_MAX_AGE ?? '30d'),
    jwtAudience: raw.JWT_AUDIENCE,
    jwtIssuer: raw.JWT_ISSUER,
    jwtPrivateKeyPem: raw.JWT_PRIVATE_KEY && checkPrivateKey(unescapeNewlines(raw.JWT_PRIVATE_KEY)),
    jwtPreviousPublicKeyPems: splitPems(raw.JWT_PREVIOUS_PUBLIC_KEYS),
    refreshGraceSeconds: Number(raw.REFRESH_GRACE_SECONDS ?? 10),
    redisKeyPrefix: raw.REDIS_KEY_PREFIX ?? 'users:',
    trustedProxyHops: Number(raw.TRUSTED_PROXY_HOPS ?? 0),
    // What each limit stops, and what it cannot, is explained at login() in auth/service.ts.
    limits: {
      loginPerAccountAddress: rule(raw.LOGIN_FAILURES_PER_ACCOUNT_ADDRESS ?? '10', raw.LOGIN_FAILURE_WINDOW ?? '15m'),
      loginPerAddress: rule(raw.LOGIN_FAILURES_PER_ADDRESS ?? '100', raw.LOGIN_FAILURE_WINDOW ?? '15m'),
      loginPerAccount: rule(raw.LOGIN_FAILURES_PER_ACCOUNT ?? '50', raw.LOGIN_FAILURE_WINDOW ?? '15m'),
      registerPerAddress: rule(raw.REGISTRATIONS_PER_ADDRESS ?? '20', raw.REGISTRATION_WINDOW ?? '1h'),
      currentPasswordPerUser: rule(raw.CURRENT_PASSWORD_FAILURES_PER_USER ?? '10', raw.LOGIN_FAILURE_WINDOW ?? '15m'),
      // Second-step codes per account, over all its mfa_tokens: each login with the password brings 5 more tries.
      mfaCodesPerUser: rule(raw.MFA_CODE_FAILURES_PER_USER ?? '10', raw.LOGIN_FAILURE_WINDOW ?? '15m'),
      // Reset requests and verification resends; the per-email one counts unknown emails alike (docs/recovery.md).
      mailPerAddress: rule(raw.MAIL_REQUESTS_PER_ADDRESS ?? '20', raw.MAIL_REQUEST_WINDOW ?? '1h'),
      mailPerEmail: rule(raw.MAIL_REQUESTS_PER_EMAIL ?? '5', raw.MAIL_REQUEST_WINDOW ?? '1h'),
    },
    mail: mailSettings(raw),
    recovery: {
      resetTokenSeconds: parseDuration(raw.PASSWORD_RESET_TOKEN_LIFETIME ?? '1h'),
      verifyTokenSeconds: parseDuration(raw.EMAIL_VERIFY_TOKEN_LIFETIME ?? '24h'),
      requireEmailVerification: parseBoolean(raw.REQUIRE_EMAIL_VERIFICATION ?? 'false'),
    },
    mfa: mfaSettings(raw),
    oidc: oidcSettings(raw),
    corsOrigins: splitList(raw.CORS_ALLOWED_ORIGINS),
    maxBodyBytes: Number(raw.MAX_BODY_BYTES ?? 1024 * 1024),
    argon2,
    securityLogRetentionDays: Number(raw.SECURITY_LOG_RETENTION_DAYS ?? 90),
    logLevel: raw.LOG_LEVEL ?? 'info',
  }
}

/** The queues that receive each event: every listed queue except this service's own. */
export const targetQueues = (config: Pick<Config, 'queueList' | 'currentQueue'>) =>
  config.queueList.filter((queue) => queue !== config.currentQueue)

/** True when no external service is configured: PGlite, in-process stores, events kept in the outbox. */
export const isEmbedded = (config: Config) => config.databaseUrl === undefined

function pickDefined(env: Record<string, string | undefined>, names: string[]): Env {
  const picked: Record<string, string> = {}
  for (const name of names) {
    const value = env[name]
    if (value !== undefined && value !== '') picked[name] = value
  }
  return picked as Env
}

// TypeBox patterns cannot bound a number written as a string, so ranges are checked here.
function checkIntegerRanges(raw: Env) {
  for (const [name, schema] of Object.entries(Env.properties) as [keyof Env, TSchema][]) {
    const value = raw[name]
    if (value === undefined || schema.minimum === undefined) continue
    const n = Number(value)
    if (n < schema.minimum || n > schema.maximum) throw new ConfigError(`${name}: expected ${schema.description}`)
  }
}

// The memory floor is checked with the other ranges. One variable set alone takes the other from OWASP's
// setting it belongs to (ARGON2_MEMORY_KIB=19456 alone means 2 passes, ARGON2_TIME_COST=2 alone 19456 KiB).
function argon2Cost(raw: Env) {
  if (raw.ARGON2_MEMORY_KIB === undefined && raw.ARGON2_TIME_COST === undefined)
    return { memoryCost: DEFAULT_ARGON2.memoryKib, timeCost: DEFAULT_ARGON2.passes }
  const memoryCost = Number(raw.ARGON2_MEMORY_KIB ?? leastMemoryFor(Number(raw.ARGON2_TIME_COST)))
  const passes = Math.min(...OWASP_ARGON2ID.filter((setting) => memoryCost >= setting.memoryKib).map((setting) => setting.passes))
  const timeCost = Number(raw.ARGON2_TIME_COST ?? passes)
  if (timeCost < passes)
    throw new ConfigError(`ARGON2_TIME_COST: expected at least ${passes} passes with ARGON2_MEMORY_KIB=${memoryCost} (OWASP's argon2id settings)`)
  return { memoryCost, timeCost }
}

const leastMemoryFor = (passes: number) =>
  Math.min(...OWASP_ARGON2ID.filter((setting) => passes >= setting.passes).map((setting) => setting.memoryKib))

function mailSettings(raw: Env) {
  const publicUrl = (raw.PUBLIC_URL ?? `http://localhost:${raw.PORT ?? 8000}`).replace(/\/+$/, '')
  return {
    smtpUrl: raw.SMTP_URL,
    from: raw.MAIL_FROM ?? `${raw.PRODUCT_NAME ?? 'Users'} <no-reply@${new URL(publicUrl).hostname}>`,
    productName: raw.PRODUCT_NAME ?? 'Users',
    resetUrl: raw.PASSWORD_RESET_URL ?? `${publicUrl}/password-reset`,
    verifyUrl: raw.EMAIL_VERIFY_URL ?? `${publicUrl}/verify-email`,
    retryMaxMs: parseDuration(raw.MAIL_RETRY_MAX ?? '5m') * 1000,
  }
}

// The relying party is the public site by default: its host as RP id, its origin as the one allowed origin.
function mfaSettings(raw: Env) {
  const publicUrl = new URL(raw.PUBLIC_URL ?? `http://localhost:${raw.PORT ?? 8000}`)
  const origins = splitList(raw.WEBAUTHN_ORIGINS).map((origin) => origin.replace(/\/+$/, ''))
  for (const origin of origins)
    if (!URL.canParse(origin) || new URL(origin).origin !== origin)
      throw new ConfigError('WEBAUTHN_ORIGINS: expected comma-separated origins such as https://app.example.com')
  return {
    /** TOTP secrets are encrypted with a key derived from this (SECRET_KEY unless MFA_ENCRYPTION_KEY is set). */
    encryptionSecret: raw.MFA_ENCRYPTION_KEY,
    issuer: raw.PRODUCT_NAME ?? 'Users',
    rpId: raw.WEBAUTHN_RP_ID ?? publicUrl.hostname,
    rpName: raw.WEBAUTHN_RP_NAME ?? raw.PRODUCT_NAME ?? 'Users',
    origins: origins.length ? origins : [publicUrl.origin],
  }
}

/** One configured OpenID provider: its discovery URL (issuer), this service's client at it, the scopes asked. */
export type OidcProviderSettings = { name: string; issuer: string; clientId: string; clientSecret: string; scopes: string[] }

// A provider's name is a path segment (/oauth/{name}/…) and a word in the security log: short and URL-safe.
const PROVIDER_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/
const PROVIDERS_SHAPE = 'a JSON list of {name, issuer, client_id, client_secret, scopes?}'

function oidcSettings(raw: Env) {
  const allowHttp = parseBoolean(raw.OIDC_ALLOW_HTTP ?? 'false')
  const providers = raw.OIDC_PROVIDERS === undefined ? [] : parseProviders(raw.OIDC_PROVIDERS, allowHttp)
  const redirectUrls = splitList(raw.OAUTH_REDIRECT_URLS).map(redirectUrl)
  if (providers.length && !redirectUrls.length)
    throw new ConfigError('OAUTH_REDIRECT_URLS: required with OIDC_PROVIDERS: the frontend pages a sign-in may return to')
  return { providers, redirectUrls, allowHttp }
}

function parseProviders(value: string, allowHttp: boolean): OidcProviderSettings[] {
  const fail = (why: string): never => {
    throw new ConfigError(`OIDC_PROVIDERS: ${why}`)
  }
  let list: unknown
  try {
    list = JSON.parse(value)
  } catch {
    return fail(`expected ${PROVIDERS_SHAPE}; the value is not valid JSON`)
  }
  if (!Array.isArray(list)) return fail(`expected ${PROVIDERS_SHAPE}; the value is not a list`)
  const names = new Set<string>()
  return list.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(`entry ${i + 1} is not an object`)
    const item = entry as Record<string, unknown>
    const name = item.name
    if (typeof name !== 'string' || !PROVIDER_NAME.test(name))
      return fail(`entry ${i + 1} needs a name of 1-32 lower-case letters, digits, - or _ (it appears in URLs)`)
    if (names.has(name)) return fail(`the name "${name}" is used twice`)
    names.add(name)
    for (const field of ['issuer', 'client_id', 'client_secret'])
      if (typeof item[field] !== 'string' || item[field] === '') fail(`provider "${name}" needs ${field} (a non-empty string)`)
    const issuer = item.issuer as string
    if (!URL.canParse(issuer) || !['https:', 'http:'].includes(new URL(issuer).protocol)) fail(`provider "${name}": issuer must be an https:// URL`)
    if (new URL(issuer).protocol === 'http:' && !allowHttp)
      fail(`provider "${name}" has an http:// issuer; set OIDC_ALLOW_HTTP=true to allow one (development only)`)
    const scopes = item.scopes ?? ['openid', 'email', 'profile']
    if (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)))
      fail(`provider "${name}": scopes must be a list of scope names`)
    // The ID token is what signs the user in: `openid` is always asked for.
    const asked = new Set(['openid', ...(scopes as string[])])
    return { name, issuer, clientId: item.client_id as string, clientSecret: item.client_secret as string, scopes: [...asked] }
  })
}

// Compared by exact string after URL normalisation (case of scheme and host, default port): no prefix match.
function redirectUrl(value: string) {
  const fail = () => {
    throw new ConfigError('OAUTH_REDIRECT_URLS: expected comma-separated absolute http(s) URLs without a #fragment, such as https://app.example.com/oauth/done')
  }
  if (!URL.canParse(value)) return fail()
  const url = new URL(value)
  if (!['https:', 'http:'].includes(url.protocol) || url.hash || value.includes('#')) return fail()
  return url.href
}

function postgresUrlFromParts(raw: Env) {
  if (!raw.POSTGRES_HOST) return undefined
  const user = encodeURIComponent(raw.POSTGRES_USER ?? 'postgres')
  const password = raw.POSTGRES_PASSWORD ? `:${encodeURIComponent(raw.POSTGRES_PASSWORD)}` : ''
  return `postgres://${user}${password}@${raw.POSTGRES_HOST}:${raw.POSTGRES_PORT ?? 5432}/${encodeURIComponent(raw.POSTGRES_DB ?? 'postgres')}`
}

function amqpUrlFromParts(raw: Env) {
  if (!raw.RABBITMQ_HOST) return undefined
  const user = encodeURIComponent(raw.RABBITMQ_DEFAULT_USER ?? 'guest')
  const password = encodeURIComponent(raw.RABBITMQ_DEFAULT_PASS ?? 'guest')
  return `amqp://${user}:${password}@${raw.RABBITMQ_HOST}:${raw.RABBITMQ_PORT ?? 5672}`
}

// The old service read QUEUE_LIST as a comma-separated string; spaces are tolerated too.
function splitList(value: string | undefined) {
  return (value ?? '').split(/[\s,]+/).filter(Boolean)
}

const rule = (limit: string, window: string) => ({ limit: Number(limit), windowSeconds: parseDuration(window) })

// A PEM in one environment line usually arrives with its newlines written as \n.
const unescapeNewlines = (pem: string) => pem.replaceAll('\\n', '\n')

function checkPrivateKey(pem: string) {
  try {
    algorithmOf(createPublicKey(createPrivateKey(pem)))
    return pem
  } catch {
    throw new ConfigError('JWT_PRIVATE_KEY: expected a PKCS#8 PEM private key of type Ed25519 or P-256')
  }
}

function splitPems(value: string | undefined) {
  const pems = unescapeNewlines(value ?? '').match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []
  for (const pem of pems) {
    try {
      algorithmOf(createPublicKey(pem))
    } catch {
      throw new ConfigError('JWT_PREVIOUS_PUBLIC_KEYS: expected SPKI PEM public keys of type Ed25519 or P-256')
    }
  }
  if (value && pems.length === 0) throw new ConfigError('JWT_PREVIOUS_PUBLIC_KEYS: expected SPKI PEM public keys of type Ed25519 or P-256')
  return pems
}

const parseBoolean = (value: string) => ['true', '1', 'yes'].includes(value)

const unitSeconds = { s: 1, m: 60, h: 3600, d: 86400 } as const

function parseDuration(value: string) {
  const unit = value.at(-1) as keyof typeof unitSeconds
  return unit in unitSeconds ? Number(value.slice(0, -1)) * unitSeconds[unit] : Number(value)
}
