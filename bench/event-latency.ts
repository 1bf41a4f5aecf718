// Measures how long a user.updated event takes from the PUT /api/users/update/ response to a consumer of
// its queue, over real HTTP, Postgres and RabbitMQ on this machine: `bun bench/event-latency.ts [rounds]`.
import { connect } from 'amqplib'
import { createApp } from '../src/app'
import { systemClock } from '../src/clock'
import { openPostgres } from '../src/db'
import { buildDeps, createPublisher } from '../src/deps'
import { createLogger } from '../src/logger'
import { createTestDatabase, testConfig } from '../test/support/app'
import { BROKER_URL } from '../test/support/broker'

const rounds = Number(process.argv[2] ?? 200)
const queue = `bench.users.latency.${crypto.randomUUID().slice(0, 8)}`
const logger = createLogger('warn', false)
const config = testConfig({ QUEUE_LIST: queue, QUEUE_DURABLE: 'false', EVENTS_EXCHANGE: `${queue}.exchange` })

const testDb = await createTestDatabase('bench')
const database = await openPostgres(testDb.url)
const publisher = createPublisher(config, BROKER_URL, logger)
const deps = await buildDeps(config, { database, publisher }, logger, systemClock)
const server = createApp(deps).listen({ hostname: '127.0.0.1', port: 0 })
const base = `http://127.0.0.1:${server.server!.port}`

const amqp = await connect(BROKER_URL)
const channel = await amqp.createChannel()
await channel.assertQueue(queue, { durable: false })
const arrivals = new Map<string, number>()
await channel.consume(queue, (message) => {
  if (message === null) return
  arrivals.set(JSON.parse(message.content.toString()).full_name, performance.now())
  channel.ack(message)
})

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
const { access } = (await (await fetch(`${base}/api/users/register/`, json({ email: 'bench@example.com', full_name: 'Bench', password: 'a-long-unusual-passphrase' }))).json()) as { access: string }
while (!arrivals.has('Bench')) await Bun.sleep(5)

const samples: number[] = []
for (let i = 0; i < rounds; i++) {
  const name = `Bench ${i}`
  const response = await fetch(`${base}/api/users/update/`, { ...json({ full_name: name }), method: 'PUT', headers: { 'content-type': 'application/json', authorization: `JWT ${access}` } })
  const respondedAt = performance.now()
  await response.arrayBuffer()
  for (let waited = 0; !arrivals.has(name) && waited < 5_000; waited++) await Bun.sleep(1)
  samples.push(arrivals.get(name)! - respondedAt)
}

samples.sort((a, b) => a - b)
const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!.toFixed(2)
console.log(`PUT /update/ response -> message consumed from the queue, ${rounds} rounds: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`)

await channel.deleteQueue(queue)
await channel.deleteExchange(config.eventsExchange)
await amqp.close()
await server.stop()
await deps.relay.stop({ deadlineMs: 1_000 })
await publisher.close()
await database.close()
await testDb.drop()
