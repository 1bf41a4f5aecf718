import type { WrkResult } from './wrk'

/** One line of the results: a wrk run (with all of wrk's counts), the hashing measurement, or the event latency. */
export type Row = RowBase & Partial<Omit<WrkResult, keyof RowBase>>

type RowBase = {
  key: string
  label: string
  /** Null where requests are made one at a time, for their latency alone. */
  requestsPerSecond: number | null
  p50Ms: number
  p99Ms: number
  /** The peak RSS of the process under load during the run; null where none was. */
  peakRssMb: number | null
  /** Throughput as a fraction of each baseline's (and of argon2id's alone, for the hash-bound rows). */
  vsBare?: number
  vsJwt?: number
  vsArgon2?: number
  note?: string
  /** Why the run does not count (non-2xx responses, socket errors...); empty when it does. */
  problems: string[]
}

export type Report = {
  mode: string
  date: string
  machine: {
    cpu: string
    cores: number
    memoryGb: number
    kernel: string
    bun: string
    wrk: string
    /** One-minute load averages before and after: anything else running shares the cores with the service and wrk. */
    loadAverage: { start: number; end: number }
  }
  settings: {
    threads: number
    connections: number
    warmupSeconds: number
    seconds: number
    eventRounds: number
    seededUsers: number
    argon2: { memoryCost: number; timeCost: number }
  }
  rows: Row[]
}

/** The report as Markdown, to paste into bench/README.md as is. */
export function formatMarkdown({ mode, date, machine, settings, rows }: Report) {
  const warmup = settings.warmupSeconds > 0 ? `${settings.warmupSeconds} s warm-up discarded, then ` : ''
  const header = [
    `${mode} run of ${date.slice(0, 16).replace('T', ' ')} UTC on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, Linux ${machine.kernel},`,
    `Bun ${machine.bun}, wrk ${machine.wrk} (load average ${machine.loadAverage.start.toFixed(2)} at the start, ${machine.loadAverage.end.toFixed(2)} at the end). wrk -t${settings.threads} -c${settings.connections},`,
    `${warmup}${settings.seconds} s measured per row; ${settings.seededUsers.toLocaleString('en')} users; argon2id m=${settings.argon2.memoryCost} KiB, t=${settings.argon2.timeCost}.`,
  ]
  const table = [
    '| | requests/s | p50 | p99 | peak RSS | vs bare | vs JWT ceiling | vs argon2id |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${r.label} | ${r.requestsPerSecond === null ? '' : rate(r.requestsPerSecond)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${r.peakRssMb === null ? '' : `${Math.round(r.peakRssMb)} MB`} | ${percent(r.vsBare)} | ${percent(r.vsJwt)} | ${percent(r.vsArgon2)} |`,
    ),
  ]
  const notes = rows.flatMap((r) => [...(r.note ? [`- ${r.label}: ${r.note}`] : []), ...(r.problems.length ? [`- ${r.label}: **failed**: ${r.problems.join(', ')}`] : [])])
  return [...header, '', ...table, ...(notes.length ? ['', ...notes] : [])].join('\n')
}

const rate = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1))
const ms = (n: number) => (Number.isNaN(n) ? '' : `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ms`)
const percent = (fraction: number | undefined) => (fraction === undefined ? '' : `${(fraction * 100).toFixed(fraction < 0.1 ? 2 : 1)}%`)
