import type { Logger } from '../logger'
import type { ImportSummary } from './django-import'

type Output = { isTTY?: boolean; write(text: string): unknown }

const BAR_WIDTH = 30
const LOG_EVERY_MS = 5_000

/** Progress of an import: a bar redrawn in place when `output` is a terminal, else a log line every few seconds. */
export function createProgress(output: Output, logger: Pick<Logger, 'info'>, now = () => Date.now()) {
  const started = now()
  let lastLogged = started
  let drawn = false
  return {
    update(done: number, total: number) {
      const seconds = Math.max((now() - started) / 1000, 0.001)
      const rate = Math.round(done / seconds)
      if (output.isTTY) {
        output.write(`\r${bar(done, total)} ${count(done)}/${count(total)} users  ${count(rate)}/s  ${eta(total - done, rate)}\x1b[K`)
        drawn = true
      } else if (now() - lastLogged >= LOG_EVERY_MS || done === total) {
        lastLogged = now()
        logger.info({ done, total, rowsPerSecond: rate }, 'import progress')
      }
    },
    /** Ends the bar's line, so that what follows starts on a line of its own. */
    finish() {
      if (drawn) output.write('\n')
    },
  }
}

function bar(done: number, total: number) {
  const share = total === 0 ? 1 : Math.min(done / total, 1)
  const filled = Math.round(share * BAR_WIDTH)
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(share * 100)).padStart(3)}%`
}

const eta = (left: number, rate: number) => (left <= 0 || rate === 0 ? '' : `${Math.ceil(left / rate)} s left`)

const count = (n: number) => n.toLocaleString('en-US')

/** The summary an operator reads at the end: the counts, then every user not imported and every picture not copied. */
export function formatSummary(summary: ImportSummary): string {
  const lines = [summary.dryRun ? 'Django import, dry run: nothing was written.' : 'Django import done.']
  const row = (label: string, n: number) => lines.push(`  ${label.padEnd(12)}${count(n).padStart(12)}`)
  row('read', summary.read)
  row('imported', summary.imported)
  row('updated', summary.updated)
  row('unchanged', summary.unchanged)
  row('skipped', summary.skipped.length)
  for (const [reason, n] of tally(summary.skipped.map((skipped) => skipped.reason))) lines.push(`    ${reason}: ${count(n)}`)
  const { copied, linked, problems } = summary.pictures
  lines.push(`  pictures: ${count(copied)} copied, ${count(linked)} linked to the old MEDIA_URL, ${count(problems.length)} not copied`)
  for (const [problem, n] of tally(problems.map((p) => p.problem))) lines.push(`    ${problem}: ${count(n)}`)
  lines.push(`  events: ${count(summary.events)}`)
  if (summary.skipped.length) {
    lines.push('', 'Skipped users (id, email: reason, detail):')
    for (const { id, email, reason, detail } of summary.skipped) lines.push(`  ${id} ${email}: ${reason}, ${detail}`)
  }
  // Without --media or --media-url every picture is dropped: the count says so, a line per user would not help.
  const fileProblems = problems.filter((p) => p.problem !== 'not_kept')
  if (fileProblems.length) {
    lines.push('', 'Pictures not copied (id, path: problem):')
    for (const { id, path, problem } of fileProblems) lines.push(`  ${id} ${path}: ${problem}`)
  }
  return `${lines.join('\n')}\n`
}

function tally(values: string[]) {
  const counts = new Map<string, number>()
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
  return counts
}
