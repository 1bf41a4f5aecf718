import { describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

// The import graph of src/, type-only imports included: dependencies point one way,
// down to small shared modules, so no module (or feature folder) depends on itself.
const SRC = resolve(import.meta.dir, '../src')
// Composition roots import everything; nothing under src/ may import them.
const ROOTS = new Set(['main.ts', 'app.ts', 'deps.ts'])

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative(SRC, path)] : []
  })
}

const transpiler = new Bun.Transpiler({ loader: 'ts' })
// scanImports drops `import type` and `export type ... from`, which still couple modules.
const TYPE_IMPORT = /^\s*(?:import|export)\s+type\s[^'"]*?from\s+['"]([^'"]+)['"]/gm

function importsOf(file: string): string[] {
  const source = readFileSync(join(SRC, file), 'utf8')
  const specifiers = new Set(transpiler.scanImports(source).map((found) => found.path))
  for (const match of source.matchAll(TYPE_IMPORT)) specifiers.add(match[1]!)
  return [...specifiers]
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => resolveFile(relative(SRC, resolve(SRC, dirname(file), specifier))))
}

const files = sourceFiles(SRC)
const fileSet = new Set(files)
// Imports name modules without extension (`./db` is `db/index.ts`); assets and JSON keep theirs.
const resolveFile = (path: string) =>
  [path, `${path}.ts`, `${path}/index.ts`].find((candidate) => fileSet.has(candidate)) ?? path

const graph = new Map(files.map((file) => [file, importsOf(file)]))

// A folder is one feature; a top-level file is its own node.
const nodeOf = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file)

function folderGraph(): Map<string, Set<string>> {
  const folders = new Map<string, Set<string>>()
  for (const [file, targets] of graph) {
    const from = nodeOf(file)
    const edges = folders.get(from) ?? new Set<string>()
    for (const target of targets) if (nodeOf(target) !== from) edges.add(nodeOf(target))
    folders.set(from, edges)
  }
  return folders
}

/**
 * Cycles, one per edge that lies on one: the edge followed by the shortest path back.
 * (Listing every elementary cycle explodes on a tangled graph; this names each bad edge once.)
 */
function cycles(edges: Map<string, Iterable<string>>): string[] {
  const shortestPath = (from: string, to: string): string[] | undefined => {
    const previous = new Map<string, string>([[from, from]])
    const queue = [from]
    for (let node = queue.shift(); node !== undefined; node = queue.shift()) {
      if (node === to) {
        const path = [to]
        while (path[0] !== from) path.unshift(previous.get(path[0]!)!)
        return path
      }
      for (const next of edges.get(node) ?? []) {
        if (!previous.has(next)) {
          previous.set(next, node)
          queue.push(next)
        }
      }
    }
  }
  const found = new Set<string>()
  for (const [from, targets] of edges) {
    for (const to of targets) {
      const back = shortestPath(to, from)
      if (!back) continue
      const cycle = [from, ...back]
      // Rotate so the same cycle found from different edges prints once.
      const ring = cycle.slice(0, -1)
      const first = ring.indexOf([...ring].sort()[0]!)
      const rotated = [...ring.slice(first), ...ring.slice(0, first)]
      found.add([...rotated, rotated[0]].join(' > '))
    }
  }
  return [...found].sort()
}

describe('import graph of src/', () => {
  test('every relative import resolves to a file under src/', () => {
    const missing = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => !fileSet.has(target) && !target.startsWith('..')).map((target) => `${file} -> ${target}`),
    )
    expect(missing).toEqual([])
  })

  test('no file imports itself through a cycle', () => {
    expect(cycles(graph)).toEqual([])
  })

  test('no feature folder imports itself through another', () => {
    expect(cycles(folderGraph())).toEqual([])
  })

  test('nothing under src/ imports a composition root (client/routes.ts may import the App type)', () => {
    const offenders = [...graph].flatMap(([file, targets]) =>
      targets
        .filter((target) => ROOTS.has(target) && !ROOTS.has(file))
        .filter((target) => !(file === 'client/routes.ts' && target === 'app.ts'))
        .map((target) => `${file} -> ${target}`),
    )
    expect(offenders).toEqual([])
  })
})
