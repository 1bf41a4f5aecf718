import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { dlopen } from 'bun:ffi'
import { boundedConcurrency } from '../concurrency'

type Sharp = typeof import('sharp').default

let loading: Promise<Sharp> | undefined
// Held for the life of the process, so that the handle is never collected (and the library never closed).
let libvips: ReturnType<typeof dlopen> | undefined

/**
 * sharp, loaded on first use (the healthcheck and the other subcommands never pay for libvips).
 *
 * In the compiled binary, `bun build --compile` embeds sharp's addon (sharp.node, through the patch in
 * patches/) and libvips itself (sharp-linux-x64's index.cjs names it with require.resolve). Bun extracts
 * the addon to a temporary file before loading it, where the addon's RPATH ($ORIGIN/../../sharp-libvips-…)
 * no longer finds libvips; so libvips is written out and loaded first: the dynamic loader then matches the
 * addon's dependency to the library already loaded by its soname. Outside the binary nothing is embedded
 * and node_modules is found as usual.
 */
export function loadSharp(): Promise<Sharp> {
  loading ??= (async () => {
    await preloadEmbeddedLibvips()
    const { default: sharp } = await import('sharp')
    // Every upload is a different image: libvips' operation cache would only hold memory.
    sharp.cache(false)
    return sharp
  })()
  return loading
}

type EmbeddedFile = Blob & { name: string }

async function preloadEmbeddedLibvips() {
  const embedded = (Bun.embeddedFiles as EmbeddedFile[]).find((file) => file.name.startsWith('libvips-cpp.so'))
  if (!embedded) return
  const folder = mkdtempSync(join(tmpdir(), 'users-libvips-'))
  try {
    const path = join(folder, embedded.name)
    writeFileSync(path, new Uint8Array(await embedded.arrayBuffer()))
    // Any one symbol will do: dlopen needs one, and vips_version proves the library is the one expected.
    libvips = dlopen(path, { vips_version: { args: ['i32'], returns: 'i32' } })
  } finally {
    // Once mapped, the library needs no file: nothing is left in the temporary folder.
    rmSync(folder, { recursive: true, force: true })
  }
}

/** One picture per core at a time: libvips already spreads one image over threads, and a queue bounds memory. */
export const pictureSlots = boundedConcurrency(availableParallelism())
