import { afterAll, beforeAll, expect, test } from 'bun:test'
import { healthRoutes } from '../src/health/routes'
import { createTestApp } from './support/app'

let t: Awaited<ReturnType<typeof createTestApp>>
beforeAll(async () => {
  t = await createTestApp({ label: 'health' })
})
afterAll(() => t.close())

test('/health/live answers 200 while the process runs', async () => {
  const response = await t.call('GET', '/health/live')
  expect(response.status).toBe(200)
  expect(response.body).toEqual({ status: 'ok' })
})

test('/health/ready checks the database, Redis and the outbox, and no broker when none is configured', async () => {
  const response = await t.call('GET', '/health/ready')
  expect(response.status).toBe(200)
  expect(response.body).toMatchObject({
    status: 'ok',
    checks: { database: { status: 'up' }, redis: { status: 'up' }, outbox: { status: 'up', failed: 0 } },
  })
  expect(response.body.checks.broker).toBeUndefined()
})

test('/health/ready answers 503 naming each check that is down, and runs every check', async () => {
  const app = healthRoutes([
    { name: 'database', check: async () => ({ status: 'up' }) },
    { name: 'redis', check: async () => ({ status: 'down', error: 'no answer' }) },
    { name: 'broker', check: () => Promise.reject(new Error('postgres://secret@db:5432 refused')) },
  ])
  const response = await app.handle(new Request('http://localhost/health/ready'))
  expect(response.status).toBe(503)
  const body = await response.json()
  expect(body).toEqual({
    detail: 'Not ready: redis, broker down.',
    code: 'not_ready',
    checks: { database: { status: 'up' }, redis: { status: 'down', error: 'no answer' }, broker: { status: 'down', error: 'the check failed' } },
  })
})
