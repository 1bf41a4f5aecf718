import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BROWSER_COMPILER_OPTIONS, buildClientPackage, PACKAGE_NAME } from '../client-package/build'

// The client as a frontend gets it: built, packed, installed with npm into a fresh project (offline: a package
// with no dependencies needs no registry), then type-checked by the repo's tsc under a browser tsconfig.
const TSC = join(import.meta.dir, '../node_modules/.bin/tsc')
const SLOW = 120_000

let work: string
let project: string
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'users-client-package-'))
  const built = await buildClientPackage(join(work, 'package'))
  succeed(['npm', 'pack', '--silent', '--pack-destination', work], built)
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'))!
  project = join(work, 'app')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tiny-app', private: true, type: 'module' }))
  // Offline, a package with a dependency fails here (nothing to fetch it from), saying which.
  succeed(['npm', 'install', '--offline', '--no-audit', '--no-fund', join(work, tarball)], project)
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: BROWSER_COMPILER_OPTIONS, include: ['app.ts'] }))
}, SLOW)
afterAll(() => rmSync(work, { recursive: true, force: true }))

function run(command: string[], cwd: string) {
  const result = Bun.spawnSync(command, { cwd, stdout: 'pipe', stderr: 'pipe' })
  return { code: result.exitCode, output: `${result.stdout.toString()}${result.stderr.toString()}` }
}

function succeed(command: string[], cwd: string) {
  const { code, output } = run(command, cwd)
  if (code !== 0) throw new Error(`${command.join(' ')} failed (${code}):\n${output}`)
}

/** Every package folder under node_modules, scoped ones included. */
function installed(modules: string): string[] {
  return readdirSync(modules)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) => (name.startsWith('@') ? readdirSync(join(modules, name)).map((inner) => `${name}/${inner}`) : [name]))
}

const bytesUnder = (path: string): number =>
  statSync(path).isDirectory() ? readdirSync(path).reduce((sum, name) => sum + bytesUnder(join(path, name)), 0) : statSync(path).size

const TINY_APP = `import { createUsersClient, type AuthEvent, type User } from '${PACKAGE_NAME}'

const users = createUsersClient({ baseUrl: 'https://api.example.com' })
const unsubscribe = users.auth.subscribe((event: AuthEvent, snapshot) => {
  const name: string | undefined = snapshot.user?.full_name
  console.log(event, snapshot.status, name)
})
const signIn = await users.login({ email: 'ann@example.com', password: 'a-long-passphrase' })
if (signIn.ok && signIn.data.step === 'mfa_required') await users.loginMfa({ mfa_token: signIn.data.mfa_token, code: '123456' })
if (!signIn.ok && signIn.error.kind === 'http') console.log(signIn.error.status, signIn.error.fields?.email)
const me = await users.me()
const user: User | null = me.ok ? me.data : null
if (!me.ok) console.log(me.error.kind === 'cors' ? 'not allowed from this origin' : me.error.kind)
console.log(user?.email, users.auth.getSnapshot().user?.id)
unsubscribe()
`

test(
  'the package installs alone: one package, no dependencies',
  () => {
    const packages = installed(join(project, 'node_modules'))
    console.log(`installed: ${packages.join(', ')}, ${bytesUnder(join(project, 'node_modules'))} bytes`)
    expect(packages).toEqual([PACKAGE_NAME])
  },
  SLOW,
)

test(
  'the installed package loads by its name and works: its bundle needs nothing but itself',
  async () => {
    // Resolved as a bundler would, through the manifest's exports, from the app's folder.
    const { createUsersClient } = await import(Bun.resolveSync(PACKAGE_NAME, project))
    const users = createUsersClient({ baseUrl: 'https://api.example.com', fetcher: () => Promise.reject(new TypeError('offline')) })
    const signIn = await users.login({ email: 'ann@example.com', password: 'a-long-passphrase' })
    expect(signIn.ok || signIn.error.kind).toBe('network')
    users.close()
  },
  SLOW,
)

test(
  'a tiny browser app using the client type-checks under a browser tsconfig, skipLibCheck off',
  () => {
    writeFileSync(join(project, 'app.ts'), TINY_APP)
    const checked = run([TSC, '--noEmit', '-p', '.'], project)
    expect(checked.output).toBe('')
    expect(checked.code).toBe(0)
  },
  SLOW,
)

test(
  'a type error in the tiny app is reported: a login without its password, a field the User has not',
  () => {
    writeFileSync(
      join(project, 'app.ts'),
      `${TINY_APP}\nawait users.login({ email: 'ann@example.com' })\nconst again = await users.me()\nif (again.ok) console.log(again.data.password)\n`,
    )
    const checked = run([TSC, '--noEmit', '-p', '.'], project)
    expect(checked.code).not.toBe(0)
    expect(checked.output).toContain("Property 'password' is missing")
    expect(checked.output).toContain("Property 'password' does not exist")
  },
  SLOW,
)

test(
  "the package's App type drives Eden's treaty for those who install elysia and @elysiajs/eden",
  () => {
    // Installed here from the repo's own node_modules (the offline registry has none); Eden's and Elysia's own
    // declarations need skipLibCheck, which is theirs to fix, not the client's.
    const repoModules = join(import.meta.dir, '../node_modules')
    const paths = { elysia: [join(repoModules, 'elysia')], '@elysiajs/eden': [join(repoModules, '@elysiajs/eden')] }
    writeFileSync(
      join(project, 'tsconfig.treaty.json'),
      JSON.stringify({ compilerOptions: { ...BROWSER_COMPILER_OPTIONS, skipLibCheck: true, paths }, include: ['treaty.ts'] }),
    )
    const usage = `import { treaty } from '@elysiajs/eden'
import type { App } from '${PACKAGE_NAME}/app'

const api = treaty<App>('https://api.example.com')
const me = await api.api.users.me.get()
const email: string | undefined = me.data?.email
`
    writeFileSync(join(project, 'treaty.ts'), usage)
    expect(run([TSC, '--noEmit', '-p', 'tsconfig.treaty.json'], project)).toEqual({ code: 0, output: '' })
    writeFileSync(join(project, 'treaty.ts'), `${usage}const name: number | undefined = me.data?.full_name\n`)
    expect(run([TSC, '--noEmit', '-p', 'tsconfig.treaty.json'], project).output).toContain("Type 'string | undefined' is not assignable to type 'number | undefined'")
  },
  SLOW,
)
