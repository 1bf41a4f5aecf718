import { describe, expect, test } from 'bun:test'
import { ConfigError, isEmbedded, loadConfig, targetQueues } from '../src/config'

describe('loadConfig', () => {
  test('has working defaults with nothing set: the embedded default on port 8000', () => {
    const config = loadConfig({})
    expect(config.port).toBe(8000)
    expect(config.dataDir).toBe('./data')
    expect(config.accessTokenSeconds).toBe(900)
    expect(config.refreshTokenSeconds).toBe(14 * 86400)
    expect(config.sessionMaxAgeSeconds).toBe(30 * 86400)
    expect(config.argon2).toEqual({ memoryCost: 7168, timeCost: 5 })
    expect(isEmbedded(config)).toBe(true)
  })

  test("builds the URLs from the old service's variable names", () => {
    const config = loadConfig({
      POSTGRES_HOST: 'db',
      POSTGRES_DB: 'users',
      POSTGRES_USER: 'app',
      POSTGRES_PASSWORD: 'p@ss word',
      RABBITMQ_HOST: 'mq',
      RABBITMQ_DEFAULT_USER: 'rabbit',
      RABBITMQ_DEFAULT_PASS: 'secret',
      QUEUE_LIST: 'posts, friends,chat',
      CURRENT_QUEUE: 'users',
    })
    expect(config.databaseUrl).toBe('postgres://app:p%40ss%20word@db:5432/users')
    expect(config.amqpUrl).toBe('amqp://rabbit:secret@mq:5672')
    expect(config.queueList).toEqual(['posts', 'friends', 'chat'])
    expect(isEmbedded(config)).toBe(false)
  })

  test('prefers the URL forms over the parts', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://u@h/d', POSTGRES_HOST: 'ignored', AMQP_URL: 'amqp://x', REDIS_URL: 'redis://r:6379/2' })
    expect(config.databaseUrl).toBe('postgresql://u@h/d')
    expect(config.amqpUrl).toBe('amqp://x')
    expect(config.redisUrl).toBe('redis://r:6379/2')
  })

  test('has event defaults: durable queues, the users exchange, a 5 s sweep, 10 attempts, 7 days of published history', () => {
    const config = loadConfig({})
    expect(config.queueDurable).toBe(true)
    expect(config.eventsExchange).toBe('users')
    expect(config.outbox).toEqual({ sweepIntervalMs: 5_000, maxAttempts: 10, retentionMs: 7 * 86_400_000 })
  })

  test('reads the event settings', () => {
    const config = loadConfig({ QUEUE_DURABLE: 'false', EVENTS_EXCHANGE: 'accounts', OUTBOX_SWEEP_INTERVAL: '30s', OUTBOX_MAX_ATTEMPTS: '3', OUTBOX_RETENTION: '1d' })
    expect(config.queueDurable).toBe(false)
    expect(config.eventsExchange).toBe('accounts')
    expect(config.outbox).toEqual({ sweepIntervalMs: 30_000, maxAttempts: 3, retentionMs: 86_400_000 })
  })

  test('events go to every queue in QUEUE_LIST except CURRENT_QUEUE', () => {
    expect(targetQueues(loadConfig({ QUEUE_LIST: 'posts,users,chat', CURRENT_QUEUE: 'users' }))).toEqual(['posts', 'chat'])
  })

  test('reads durations in seconds or with a unit', () => {
    expect(loadConfig({ ACCESS_TOKEN_LIFETIME: '300' }).accessTokenSeconds).toBe(300)
    expect(loadConfig({ ACCESS_TOKEN_LIFETIME: '5m', REFRESH_TOKEN_LIFETIME: '2d' }).refreshTokenSeconds).toBe(172800)
    expect(loadConfig({ SESSION_MAX_AGE: '7d' }).sessionMaxAgeSeconds).toBe(7 * 86400)
  })

  test('reads the login limits: strict per account and address, per address, account-wide, current password', () => {
    const { limits } = loadConfig({})
    expect(limits.loginPerAccountAddress).toEqual({ limit: 10, windowSeconds: 900 })
    expect(limits.loginPerAddress).toEqual({ limit: 100, windowSeconds: 900 })
    expect(limits.loginPerAccount).toEqual({ limit: 50, windowSeconds: 900 })
    expect(limits.currentPasswordPerUser).toEqual({ limit: 10, windowSeconds: 900 })
    const set = loadConfig({ LOGIN_FAILURES_PER_ACCOUNT_ADDRESS: '5', LOGIN_FAILURES_PER_ACCOUNT: '20', CURRENT_PASSWORD_FAILURES_PER_USER: '3', LOGIN_FAILURE_WINDOW: '1h' }).limits
    expect([set.loginPerAccountAddress, set.loginPerAccount, set.currentPasswordPerUser]).toEqual([
      { limit: 5, windowSeconds: 3600 },
      { limit: 20, windowSeconds: 3600 },
      { limit: 3, windowSeconds: 3600 },
    ])
  })

  test.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ ACCESS_TOKEN_LIFETIME: '0' }, 'ACCESS_TOKEN_LIFETIME'],
    [{ ARGON2_MEMORY_KIB: '1024' }, 'ARGON2_MEMORY_KIB'],
    [{ ARGON2_MEMORY_KIB: '9216', ARGON2_TIME_COST: '3' }, 'ARGON2_TIME_COST'],
    [{ ARGON2_MEMORY_KIB: '19455', ARGON2_TIME_COST: '2' }, 'ARGON2_TIME_COST'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ QUEUE_DURABLE: 'maybe' }, 'QUEUE_DURABLE'],
    [{ OUTBOX_MAX_ATTEMPTS: '0' }, 'OUTBOX_MAX_ATTEMPTS'],
    [{ SECRET_KEY: 'x' }, 'SECRET_KEY'],
    [{ SECRET_KEY: 'k'.repeat(31) }, 'SECRET_KEY'],
  ])('a bad setting %p stops start-up with a line naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(new RegExp(`^${name}: expected `))
  })

  test("accepts an argon2id cost that reaches one of OWASP's settings in both memory and passes", () => {
    for (const [memory, passes] of [['47104', '1'], ['19456', '2'], ['12288', '3'], ['9216', '4'], ['7168', '5'], ['65536', '3']])
      expect(loadConfig({ ARGON2_MEMORY_KIB: memory, ARGON2_TIME_COST: passes }).argon2).toEqual({ memoryCost: Number(memory), timeCost: Number(passes) })
  })

  test("takes an argon2id variable set alone with the other from OWASP's setting it belongs to", () => {
    expect(loadConfig({ ARGON2_MEMORY_KIB: '19456' }).argon2).toEqual({ memoryCost: 19456, timeCost: 2 })
    expect(loadConfig({ ARGON2_MEMORY_KIB: '65536' }).argon2).toEqual({ memoryCost: 65536, timeCost: 1 })
    expect(loadConfig({ ARGON2_TIME_COST: '2' }).argon2).toEqual({ memoryCost: 19456, timeCost: 2 })
    expect(loadConfig({ ARGON2_TIME_COST: '8' }).argon2).toEqual({ memoryCost: 7168, timeCost: 8 })
  })

  test('takes a SECRET_KEY of 32 bytes or more, counted in UTF-8 bytes', () => {
    expect(loadConfig({ SECRET_KEY: 'k'.repeat(32) }).secretKey).toBe('k'.repeat(32))
    expect(loadConfig({ SECRET_KEY: 'é'.repeat(16) }).secretKey).toBe('é'.repeat(16))
    expect(() => loadConfig({ SECRET_KEY: 'é'.repeat(15) })).toThrow('SECRET_KEY: expected at least 32 bytes of secret (openssl rand -base64 48 makes one)')
  })

  test('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(8000)
  })
})

describe('OpenID Connect providers', () => {
  const google = { name: 'google', issuer: 'https://accounts.google.com', client_id: 'id', client_secret: 'secret' }
  const load = (providers: unknown, env: Record<string, string> = {}) =>
    loadConfig({ OIDC_PROVIDERS: typeof providers === 'string' ? providers : JSON.stringify(providers), OAUTH_REDIRECT_URLS: 'https://app.example.com/oauth/done', ...env })
  const failure = (providers: unknown, env: Record<string, string> = {}) => {
    try {
      load(providers, env)
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      return (error as Error).message
    }
    throw new Error('expected a ConfigError')
  }

  test('none by default', () => {
    expect(loadConfig({}).oidc).toEqual({ providers: [], redirectUrls: [], allowHttp: false })
  })

  test('reads the providers, always asking for openid, and normalises the redirect URLs', () => {
    const config = load([google, { ...google, name: 'gitlab', issuer: 'https://gitlab.com', scopes: ['email', 'read_user'] }], {
      OAUTH_REDIRECT_URLS: 'HTTPS://App.Example.com:443/oauth/done, http://localhost:3000/done',
    })
    expect(config.oidc.providers).toEqual([
      { name: 'google', issuer: 'https://accounts.google.com', clientId: 'id', clientSecret: 'secret', scopes: ['openid', 'email', 'profile'] },
      { name: 'gitlab', issuer: 'https://gitlab.com', clientId: 'id', clientSecret: 'secret', scopes: ['openid', 'email', 'read_user'] },
    ])
    expect(config.oidc.redirectUrls).toEqual(['https://app.example.com/oauth/done', 'http://localhost:3000/done'])
  })

  test('one line naming the variable for each mistake', () => {
    expect(failure('[{')).toBe('OIDC_PROVIDERS: expected a JSON list of {name, issuer, client_id, client_secret, scopes?}; the value is not valid JSON')
    expect(failure({ ...google })).toBe('OIDC_PROVIDERS: expected a JSON list of {name, issuer, client_id, client_secret, scopes?}; the value is not a list')
    expect(failure(['google'])).toBe('OIDC_PROVIDERS: entry 1 is not an object')
    expect(failure([{ ...google, client_secret: undefined }])).toBe('OIDC_PROVIDERS: provider "google" needs client_secret (a non-empty string)')
    expect(failure([{ ...google, client_id: '' }])).toBe('OIDC_PROVIDERS: provider "google" needs client_id (a non-empty string)')
    expect(failure([{ ...google, issuer: undefined }])).toBe('OIDC_PROVIDERS: provider "google" needs issuer (a non-empty string)')
    expect(failure([google, google])).toBe('OIDC_PROVIDERS: the name "google" is used twice')
    for (const name of ['Google', 'my provider', 'a/b', '', 'x'.repeat(33), 7])
      expect(failure([{ ...google, name }])).toBe('OIDC_PROVIDERS: entry 1 needs a name of 1-32 lower-case letters, digits, - or _ (it appears in URLs)')
    expect(failure([{ ...google, issuer: 'accounts.google.com' }])).toBe('OIDC_PROVIDERS: provider "google": issuer must be an https:// URL')
    expect(failure([{ ...google, issuer: 'ftp://accounts.google.com' }])).toBe('OIDC_PROVIDERS: provider "google": issuer must be an https:// URL')
    expect(failure([{ ...google, issuer: 'http://localhost:8080' }])).toBe(
      'OIDC_PROVIDERS: provider "google" has an http:// issuer; set OIDC_ALLOW_HTTP=true to allow one (development only)',
    )
    expect(failure([{ ...google, scopes: 'email' }])).toBe('OIDC_PROVIDERS: provider "google": scopes must be a list of scope names')
    expect(failure([{ ...google, scopes: ['e mail'] }])).toBe('OIDC_PROVIDERS: provider "google": scopes must be a list of scope names')
    expect(failure([google], { OAUTH_REDIRECT_URLS: '' })).toBe('OAUTH_REDIRECT_URLS: required with OIDC_PROVIDERS: the frontend pages a sign-in may return to')
    for (const url of ['/oauth/done', 'app.example.com/done', 'javascript:alert(1)', 'https://app.example.com/done#x'])
      expect(failure([google], { OAUTH_REDIRECT_URLS: url })).toBe(
        'OAUTH_REDIRECT_URLS: expected comma-separated absolute http(s) URLs without a #fragment, such as https://app.example.com/oauth/done',
      )
    expect(failure([google], { OIDC_ALLOW_HTTP: 'maybe' })).toBe('OIDC_ALLOW_HTTP: expected true or false')
  })

  test('OIDC_ALLOW_HTTP=true allows an http:// issuer, for development', () => {
    expect(load([{ ...google, issuer: 'http://localhost:8080' }], { OIDC_ALLOW_HTTP: 'true' }).oidc.allowHttp).toBe(true)
  })
})
