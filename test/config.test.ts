import { describe, expect, test } from 'bun:test'
import { ConfigError, isEmbedded, loadConfig } from '../src/config'

describe('loadConfig', () => {
  test('has working defaults with nothing set: the embedded default on port 8000', () => {
    const config = loadConfig({})
    expect(config.port).toBe(8000)
    expect(config.dataDir).toBe('./data')
    expect(config.accessTokenSeconds).toBe(900)
    expect(config.refreshTokenSeconds).toBe(14 * 86400)
    expect(config.argon2).toEqual({ memoryCost: 19456, timeCost: 2 })
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

  test('reads durations in seconds or with a unit', () => {
    expect(loadConfig({ ACCESS_TOKEN_LIFETIME: '300' }).accessTokenSeconds).toBe(300)
    expect(loadConfig({ ACCESS_TOKEN_LIFETIME: '5m', REFRESH_TOKEN_LIFETIME: '2d' }).refreshTokenSeconds).toBe(172800)
  })

  test.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ ACCESS_TOKEN_LIFETIME: '0' }, 'ACCESS_TOKEN_LIFETIME'],
    [{ ARGON2_MEMORY_KIB: '1024' }, 'ARGON2_MEMORY_KIB'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ])('a bad setting %p stops start-up with a line naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(new RegExp(`^${name}: expected `))
  })

  test('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(8000)
  })
})
