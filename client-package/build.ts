// `bun run build:client`: the browser client as a package of its own in dist/client/, with no dependencies:
// an ESM bundle, declarations checked under a browser tsconfig, and the server's route types written out in full.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript5'
import { routesTypeText } from './routes-type'

const ROOT = resolve(import.meta.dir, '..')
const SOURCE = join(ROOT, 'src/client')
export const OUT = join(ROOT, 'dist/client')
export const PACKAGE_NAME = 'users-service-client'

/** What a web app's tsconfig typically says; the package's declarations must pass it with skipLibCheck off. */
export const BROWSER_COMPILER_OPTIONS = {
  lib: ['DOM', 'ES2022'],
  target: 'ES2022',
  module: 'ESNext',
  moduleResolution: 'bundler',
  strict: true,
  types: [] as string[],
  skipLibCheck: false,
  noEmit: true,
}

export async function buildClientPackage(out = OUT) {
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  writeDeclarations(out, `export type Routes = ${routesTypeText(ROOT)}\n`)
  await bundle(out)
  writeFileSync(join(out, 'app.d.ts'), APP_DECLARATION)
  const { version } = await Bun.file(join(ROOT, 'package.json')).json()
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(manifest(version), null, 2)}\n`)
  writeFileSync(join(out, 'README.md'), README)
  return out
}

/**
 * The client's .d.ts files, compiled under the browser's lib with the routes written out in place of
 * routes.ts (whose `App['~Routes']` would pull in the server): any server type left in either fails here.
 */
function writeDeclarations(out: string, routes: string) {
  const routesFile = join(SOURCE, 'routes.ts')
  const { options, errors } = ts.convertCompilerOptionsFromJson(
    { ...BROWSER_COMPILER_OPTIONS, noEmit: false, declaration: true, emitDeclarationOnly: true, rootDir: SOURCE, outDir: out },
    ROOT,
  )
  if (errors.length) throw new Error(ts.formatDiagnostics(errors, formatHost))
  const host = ts.createCompilerHost(options)
  const readSource = host.getSourceFile
  host.getSourceFile = (file, language, ...rest) =>
    resolve(file) === routesFile ? ts.createSourceFile(file, routes, language) : readSource(file, language, ...rest)
  const files = readdirSync(SOURCE)
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(SOURCE, name))
  const program = ts.createProgram(files, options, host)
  const emitted = program.emit()
  const problems = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics]
  if (problems.length) throw new Error(`the client does not compile for a browser:\n${ts.formatDiagnostics(problems, formatHost)}`)
}

async function bundle(out: string) {
  const build = await Bun.build({ entrypoints: [join(SOURCE, 'index.ts')], outdir: out, target: 'browser', format: 'esm', naming: 'index.js' })
  if (!build.success) throw new AggregateError(build.logs, 'could not bundle the client')
}

const formatHost: ts.FormatDiagnosticsHost = { getCanonicalFileName: (name) => name, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }

const manifest = (version: string) => ({
  name: PACKAGE_NAME,
  version,
  description: 'The browser client of the Users service: typed calls, tokens, auth state across tabs',
  type: 'module',
  sideEffects: false,
  main: './index.js',
  module: './index.js',
  types: './index.d.ts',
  exports: {
    '.': { types: './index.d.ts', import: './index.js', default: './index.js' },
    './app': { types: './app.d.ts' },
  },
  // Only for `import type { App } from 'users-service-client/app'` with Eden's treaty; the client needs neither.
  peerDependencies: { elysia: '>=1.4.19', '@elysiajs/eden': '>=1.4.9' },
  peerDependenciesMeta: { elysia: { optional: true }, '@elysiajs/eden': { optional: true } },
})

const APP_DECLARATION = `import type { Elysia } from 'elysia'
import type { Routes } from './routes'

/**
 * The service's Elysia app type, for \`treaty<App>(url)\` from @elysiajs/eden. Needs \`elysia\` and
 * \`@elysiajs/eden\` installed (Eden's types are Elysia's); the client itself needs neither.
 */
export type App = Elysia<'', any, any, any, Routes>
`

const README = `# ${PACKAGE_NAME}

The browser client of the Users service, built from the service's source by \`bun run build:client\`:
typed calls for every flow, the tokens kept and refreshed, and an auth state shared by the tabs of the app.
No dependencies. See docs/client.md in the service's repository.
`

if (import.meta.main) console.log(`built ${await buildClientPackage()}`)
