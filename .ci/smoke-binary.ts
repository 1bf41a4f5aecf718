// Smoke test of the compiled binary, run by .ci/run after `bun run build`: copied alone into an empty
// folder (no node_modules, no drizzle/), it must migrate and serve on the machine's Postgres, Redis and
// RabbitMQ, and on the embedded default; import an old Django user who then logs in with the old
// password; re-encode an uploaded photo with the libvips it carries; serve the docs page's UI; answer its
// health check; and stop cleanly on SIGTERM.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'amqplib'
import postgres from 'postgres'
import { createClient } from 'redis'
import sharp from 'sharp'
import { createOldDatabase, oldRow } from '../test/support/django'
import { photoWithExif } from '../test/support/images'

// Made by Django's make_password for 'correct horse battery staple' (test/fixtures).
const DJANGO_HASH = 'pbkdf2_sha256$260000$URPEPpe13z3kzAdkATALM5$XKP3fAZo3oxrJZfQQ4FeCm8hp//f/QTrQ/B1XE4TSBw='

const folder = mkdtempSync(join(tmpdir(), 'users-binary-'))
const binary = join(folder, 'users')
copyFileSync(join(import.meta.dir, '../dist/users'), binary)
Bun.spawnSync(['chmod', '+x', binary])

const admin = postgres('postgres://postgres@127.0.0.1:5432/postgres', { max: 1, onnotice: () => {} })
const database = `users_binary_smoke_${process.pid}`
await admin.unsafe(`create database "${database}"`)

const run = (args: string[], env: Record<string, string>) =>
  Bun.spawn([binary, ...args], { cwd: folder, env: { PATH: '/usr/bin:/bin', LOG_LEVEL: 'warn', ...env }, stdout: 'pipe', stderr: 'pipe' })

async function check(label: string, env: Record<string, string>, oldUser?: { email: string; password: string }) {
  const port = String(20_000 + Math.floor(Math.random() * 20_000))
  const service = run(['serve'], { ...env, PORT: port })
  const base = `http://127.0.0.1:${port}`
  try {
    await until(() => fetch(`${base}/health/live`).then((response) => response.ok, () => false), 60_000)
    const registered = await fetch(`${base}/api/users/register/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `smoke-${label}@example.com`, full_name: 'Smoke Test', password: 'a-long-unusual-passphrase' }),
    })
    assert(registered.status === 200, `${label}: register answered ${registered.status}`)
    const { access } = (await registered.json()) as { access: string }
    const me = await fetch(`${base}/api/users/me/`, { headers: { authorization: `JWT ${access}` } })
    assert(me.status === 200, `${label}: GET /me answered ${me.status}`)
    await checkPicture(label, base, access)
    if (oldUser) {
      const login = await fetch(`${base}/api/users/login/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(oldUser),
      })
      assert(login.status === 200, `${label}: the imported user's login answered ${login.status}`)
    }
    // The docs page's UI is embedded in the binary: nothing beside it, nothing from the network.
    const ui = await fetch(`${base}/api/users/swagger/swagger-ui-bundle.js`)
    assert(ui.status === 200 && (await ui.text()).includes('SwaggerUIBundle'), `${label}: the docs UI answered ${ui.status}`)
    const ready = await fetch(`${base}/health/ready`)
    assert(ready.status === 200, `${label}: /health/ready answered ${ready.status}: ${await ready.text()}`)
    const healthcheck = await run(['healthcheck'], { ...env, PORT: port }).exited
    assert(healthcheck === 0, `${label}: the healthcheck subcommand exited ${healthcheck}`)
  } finally {
    service.kill('SIGTERM')
  }
  const code = await service.exited
  assert(code === 0, `${label}: exited ${code} after SIGTERM: ${await new Response(service.stderr).text()}`)
  console.log(`binary smoke (${label}): register, /me, picture, ${oldUser ? 'imported login, ' : ''}docs UI, ready, healthcheck, SIGTERM -> exit 0`)
}

// The binary decodes with the libvips embedded in it: a 64 × 32 JPEG with EXIF and "turn 90° clockwise"
// comes back as a 32 × 64 WebP without EXIF.
async function checkPicture(label: string, base: string, access: string) {
  const form = new FormData()
  form.append('profile_pic', new File([await photoWithExif(64, 32, 6)], 'photo.jpg', { type: 'image/jpeg' }))
  const upload = await fetch(`${base}/api/users/update/`, { method: 'PUT', headers: { authorization: `JWT ${access}` }, body: form })
  const body = (await upload.json()) as { profile_pic?: string }
  assert(upload.status === 200 && body.profile_pic !== undefined, `${label}: the picture upload answered ${upload.status}: ${JSON.stringify(body)}`)
  const served = await fetch(body.profile_pic)
  assert(served.status === 200, `${label}: the picture answered ${served.status}`)
  assert(served.headers.get('content-type') === 'image/webp', `${label}: the picture is served as ${served.headers.get('content-type')}`)
  const picture = await sharp(await served.arrayBuffer()).metadata()
  assert(
    picture.format === 'webp' && picture.width === 32 && picture.height === 64 && picture.exif === undefined,
    `${label}: the stored picture is ${picture.format} ${picture.width}x${picture.height}${picture.exif ? ' with EXIF' : ''}`,
  )
}

try {
  const version = Bun.spawnSync([binary, '--version']).stdout.toString().trim()
  assert(/^users \d+\.\d+\.\d+$/.test(version), `--version printed ${JSON.stringify(version)}`)
  const services = {
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
    SECRET_KEY: 'binary-smoke-secret-binary-smoke-secret',
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `binary-smoke-${process.pid}:`,
    AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
    EVENTS_EXCHANGE: `binary.smoke.${process.pid}`,
  }
  assert((await run(['migrate'], services).exited) === 0, 'migrate failed')
  const oldUser = { email: 'old.user@example.com', password: 'correct horse battery staple' }
  const old = await createOldDatabase([oldRow({ email: oldUser.email, password: DJANGO_HASH })])
  try {
    const imported = run(['import-django', '--from', old.url], services)
    assert((await imported.exited) === 0, `import-django failed: ${await new Response(imported.stderr).text()}`)
  } finally {
    await old.drop()
  }
  await check('postgres', services, oldUser)
  await check('embedded', { DATA_DIR: join(folder, 'data') })
} finally {
  await admin.unsafe(`drop database if exists "${database}" with (force)`)
  await admin.end()
  await forgetRedisKeys(`binary-smoke-${process.pid}:`)
  await deleteExchange(`binary.smoke.${process.pid}`)
  rmSync(folder, { recursive: true, force: true })
}

// What the run left in the shared Redis and RabbitMQ goes with it, as the tests' own does.
async function forgetRedisKeys(prefix: string) {
  const redis = await createClient({ url: 'redis://127.0.0.1:6379' }).connect()
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (keys.length) await redis.del(keys)
  redis.destroy()
}

async function deleteExchange(name: string) {
  const connection = await connect('amqp://guest:guest@127.0.0.1:5672')
  const channel = await connection.createChannel()
  await channel.deleteExchange(name)
  await connection.close()
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`binary smoke test failed: ${message}`)
}

async function until(condition: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`binary smoke test failed: not up within ${timeoutMs} ms`)
    await Bun.sleep(200)
  }
}
