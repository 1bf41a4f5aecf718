import { join } from 'node:path'

/** One measured wrk run: rates and latencies as wrk saw them, and every kind of failure it counted. */
export type WrkResult = {
  requests: number
  seconds: number
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  /** Responses with a status of 400 or more (wrk's "Non-2xx or 3xx": the API answers no 3xx). */
  non2xx: number
  socketErrors: { connect: number; read: number; write: number; timeout: number }
  /** Requests a token-pool script had no fresh token for. */
  exhausted: number
}

export type WrkRun = {
  url: string
  seconds: number
  threads: number
  connections: number
  headers?: Record<string, string>
  /** A script of bench/lua, by name, and its arguments. */
  script?: { name: string; args: (string | number)[] }
}

// Generous: login queues 64 connections behind a few hashes a second, and a timed-out request would
// drop out of the latencies instead of showing in them.
const TIMEOUT_SECONDS = 30
const LUA = join(import.meta.dir, 'lua')

export async function wrkVersion() {
  const run = Bun.spawnSync(['wrk', '-v'])
  return `${run.stdout}${run.stderr}`.match(/wrk (\S+)/)?.[1] ?? 'unknown'
}

/** One wrk run, its script written into `scratch`. */
export async function wrk(run: WrkRun, scratch: string): Promise<WrkResult> {
  const script = join(scratch, `wrk-${crypto.randomUUID()}.lua`)
  const report = await Bun.file(join(LUA, 'report.lua')).text()
  const body = run.script ? await Bun.file(join(LUA, `${run.script.name}.lua`)).text() : ''
  await Bun.write(script, `${report}\n${body}`)
  const headers = Object.entries(run.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
  const command = [
    'wrk', `-t${run.threads}`, `-c${run.connections}`, `-d${run.seconds}s`, `--timeout`, `${TIMEOUT_SECONDS}s`,
    '-s', script, ...headers, run.url, '--', ...(run.script?.args ?? []).map(String),
  ]
  const child = Bun.spawn(command, { stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited])
  const line = stdout.split('\n').find((l) => l.startsWith('wrk-result '))
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}) on ${run.url}:\n${stdout}${stderr}`)
  const r = JSON.parse(line.slice('wrk-result '.length)) as Record<string, number>
  const seconds = r.durationUs! / 1e6
  return {
    requests: r.requests!,
    seconds,
    requestsPerSecond: r.requests! / seconds,
    // wrk says 0 when nothing completed; NaN (null in the JSON) is no latency at all.
    p50Ms: r.requests ? r.p50Us! / 1000 : NaN,
    p99Ms: r.requests ? r.p99Us! / 1000 : NaN,
    non2xx: r.status!,
    socketErrors: { connect: r.connect!, read: r.read!, write: r.write!, timeout: r.timeout! },
    exhausted: r.exhausted!,
  }
}

/** What went wrong in a run, in words; empty when nothing did. */
export function problems(result: WrkResult): string[] {
  const { connect, read, write, timeout } = result.socketErrors
  return [
    result.non2xx && `${result.non2xx} non-2xx responses`,
    connect && `${connect} connect errors`,
    read && `${read} read errors`,
    write && `${write} write errors`,
    timeout && `${timeout} timeouts`,
    result.exhausted && `the token pool ran out (${result.exhausted} requests without a fresh token)`,
  ].filter((problem): problem is string => typeof problem === 'string')
}
