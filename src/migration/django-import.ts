import { TypeCompiler } from '@sinclair/typebox/compiler'
import { sql, TransactionRollbackError } from 'drizzle-orm'
import postgres from 'postgres'
import type { Clock } from '../clock'
import { queryRows, type Database } from '../db'
import { recordUserEvents } from '../users/events'
import type { Logger } from '../logger'
import { isExternalPicture, type FileStore } from '../storage/files'
import { email as emailSchema } from '../users/model'
import type { PictureLimits } from '../users/picture'
import type { UserRow } from '../users/table'
import { importPicture, type ImportedPicture, type PictureProblem, type PictureSource } from './django-pictures'
import { mapConcurrently } from '../concurrency'

export type ImportDeps = {
  db: Database
  files: FileStore
  clock: Clock
  logger: Pick<Logger, 'warn'>
  /** Old pictures are re-encoded within the bounds uploads get. */
  pictureLimits: Omit<PictureLimits, 'maxBytes'>
}

export type ImportOptions = PictureSource & {
  /** Postgres URL of the old service's database, which is only read. */
  from: string
  /** Do everything, then roll each batch back and store no file. */
  dryRun?: boolean
  /** Store user.created (user.updated on a re-run) in the outbox for every user written. */
  emitEvents?: boolean
  batchSize?: number
  onProgress?: (done: number, total: number) => void
}

export type SkipReason = 'email_collision' | 'invalid_email' | 'email_taken' | 'signed_in_here'

export type ImportSummary = {
  dryRun: boolean
  read: number
  /** New users. */
  imported: number
  updated: number
  unchanged: number
  skipped: { id: string; email: string; reason: SkipReason; detail: string }[]
  pictures: { copied: number; linked: number; problems: { id: string; path: string; problem: PictureProblem }[] }
  events: number
}

// A row of Django's custom user model, timestamps as ISO text: a JS Date would drop the microseconds,
// and the re-run would then see every row as changed.
type OldUser = {
  id: string
  email: string
  full_name: string
  password: string
  profile_pic: string | null
  is_superuser: boolean
  is_staff: boolean
  is_active: boolean
  last_login: string | null
  date_joined: string
}

// Our row as the upsert reads it with json_to_recordset, which matches these keys to column names.
type Incoming = {
  id: string
  email: string
  full_name: string
  password_hash: string
  profile_pic: string | null
  is_admin: boolean
  is_active: boolean
  last_login: string | null
  created_at: string
}

type Collision = { keptId: string; keptEmail: string }
type Existing = { id: string; profile_pic: string | null; email_holder: string | null; signed_in_here: boolean }
type Candidate = { old: OldUser; email: string }
type Skip = (old: OldUser, reason: SkipReason, detail: string) => void

const validEmail = TypeCompiler.Compile(emailSchema)
const DEFAULT_BATCH_SIZE = 5_000
// Files read from disk or written to the store at once.
const FILE_CONCURRENCY = 16

/**
 * Imports the old service's users (`userauth_baseuser`) into ours, keeping ids, emails (lower-cased),
 * names, password hashes and pictures: an upsert by id, one transaction per batch, so a re-run
 * changes nothing. The old database is read in one read-only snapshot.
 */
export async function importDjangoUsers(deps: ImportDeps, options: ImportOptions): Promise<ImportSummary> {
  const summary: ImportSummary = {
    dryRun: options.dryRun === true,
    read: 0,
    imported: 0,
    updated: 0,
    unchanged: 0,
    skipped: [],
    pictures: { copied: 0, linked: 0, problems: [] },
    events: 0,
  }
  const source = postgres(options.from, { max: 1, onnotice: () => {} })
  try {
    await source.begin('isolation level repeatable read read only', async (old) => {
      const [{ total }] = await old<[{ total: number }]>`select count(*)::int as total from userauth_baseuser`
      const collisions = await findCollisions(old)
      for await (const rows of readAhead(readOldUsers(old).cursor(options.batchSize ?? DEFAULT_BATCH_SIZE))) {
        await importBatch(deps, options, rows, collisions, summary)
        summary.read += rows.length
        options.onProgress?.(summary.read, total)
      }
    })
  } finally {
    await source.end({ timeout: 5 })
  }
  return summary
}

// to_json gives ISO 8601 with microseconds whatever the server's DateStyle.
const readOldUsers = (old: postgres.TransactionSql) => old<OldUser[]>`
  select id, email, full_name, password, profile_pic, is_superuser, is_staff, is_active,
    to_json(last_login) #>> '{}' as last_login, to_json(date_joined) #>> '{}' as date_joined
  from userauth_baseuser order by id`

/**
 * Django's unique email is case-sensitive, ours is not. Of each group of emails equal but for case, the
 * account to keep is the active one that logged in last (then the newest); the others are reported.
 */
async function findCollisions(old: postgres.TransactionSql): Promise<Map<string, Collision>> {
  const rows = await old<{ id: string; kept_id: string; kept_email: string }[]>`
    select id, first_value(id) over same as kept_id, first_value(email) over same as kept_email
    from userauth_baseuser
    where lower(email) in (select lower(email) from userauth_baseuser group by 1 having count(*) > 1)
    window same as (partition by lower(email) order by is_active desc, last_login desc nulls last, date_joined desc, id)`
  return new Map(rows.filter((row) => row.id !== row.kept_id).map((row) => [row.id, { keptId: row.kept_id, keptEmail: row.kept_email }]))
}

async function importBatch(
  deps: ImportDeps,
  options: ImportOptions,
  rows: OldUser[],
  collisions: Map<string, Collision>,
  summary: ImportSummary,
) {
  const skip: Skip = (old, reason, detail) => void summary.skipped.push({ id: old.id, email: old.email, reason, detail })
  const candidates = validCandidates(rows, collisions, skip)
  const existing = new Map((await existingUsers(deps.db, candidates)).map((row) => [row.id, row]))
  const accepted = candidates.filter((candidate) => isFree(candidate, existing.get(candidate.old.id), skip))
  const imports = await mapConcurrently(accepted, FILE_CONCURRENCY, async (candidate) => ({
    ...candidate,
    picture: await importPicture(options, deps.pictureLimits, candidate.old.id, candidate.old.profile_pic),
  }))
  await storePictures(deps, options, imports, existing, summary.pictures)

  const incoming = imports.map(({ old, email, picture }) => toIncoming(old, email, picture.value))
  const written = await write(deps, options, incoming)
  const inserted = written.filter((row) => row.inserted).length
  summary.imported += inserted
  summary.updated += written.length - inserted
  summary.unchanged += incoming.length - written.length
  if (options.emitEvents) summary.events += written.length
  if (!options.dryRun) await deleteReplacedPictures(deps, written, existing, incoming)
}

/** The rows that can be ours: each reported collision and invalid email is left out. */
function validCandidates(rows: OldUser[], collisions: Map<string, Collision>, skip: Skip) {
  const seen = new Map<string, string>()
  const candidates: Candidate[] = []
  for (const old of rows) {
    const email = old.email.toLowerCase()
    const collision = collisions.get(old.id)
    // JavaScript's lower-casing is ours; Postgres's lower() (which found the collisions) may differ beyond ASCII.
    const twin = seen.get(email)
    if (collision) skip(old, 'email_collision', `the same email as ${collision.keptId} (${collision.keptEmail}), which is imported instead`)
    else if (twin) skip(old, 'email_collision', `the same email as ${twin}, which is imported instead`)
    else if (!validEmail.Check(email)) skip(old, 'invalid_email', 'not an email address this service accepts')
    else {
      seen.set(email, old.id)
      candidates.push({ old, email })
    }
  }
  return candidates
}

/** What this service already holds of the batch: rows with the same id, and other users with the same email. */
function existingUsers(db: Database, candidates: Candidate[]) {
  const keys = candidates.map(({ old, email }) => ({ id: old.id, email, last_login: old.last_login }))
  return queryRows<Existing>(
    db,
    sql`select incoming.id, existing.profile_pic, holder.id as email_holder,
        coalesce(existing.last_login > coalesce(incoming.last_login, '-infinity'), false) as signed_in_here
      from json_to_recordset(${JSON.stringify(keys)}::json) as incoming(id uuid, email text, last_login timestamptz)
      left join users existing on existing.id = incoming.id
      left join users holder on holder.email = incoming.email and holder.id <> incoming.id
      where existing.id is not null or holder.id is not null`,
  )
}

// Once a user has logged in here, the account is this service's: a later import must not bring back an old
// password or email over what they changed since.
function isFree({ old, email }: Candidate, existing: Existing | undefined, skip: Skip) {
  if (existing?.email_holder) skip(old, 'email_taken', `${email} belongs to user ${existing.email_holder} of this service`)
  else if (existing?.signed_in_here) skip(old, 'signed_in_here', 'logged in to this service since it was imported: left as it is')
  else return true
  return false
}

type Import = Candidate & { picture: ImportedPicture }

// Before the batch's transaction, as an update does: a file whose row then fails to commit is only an orphan.
async function storePictures(
  deps: ImportDeps,
  options: ImportOptions,
  imports: Import[],
  existing: Map<string, Existing>,
  report: ImportSummary['pictures'],
) {
  const uploads = []
  for (const { old, picture } of imports) {
    if (picture.problem) report.problems.push({ id: old.id, path: old.profile_pic ?? '', problem: picture.problem })
    if (picture.value && !picture.upload) report.linked++
    // The key is the content's hash: a picture already stored under it is the same picture.
    if (picture.upload && picture.upload.key !== existing.get(old.id)?.profile_pic) uploads.push(picture.upload)
  }
  report.copied += uploads.length
  if (!options.dryRun) await mapConcurrently(uploads, FILE_CONCURRENCY, (upload) => deps.files.put(upload.key, upload.bytes, upload.mime))
}

const toIncoming = (old: OldUser, email: string, profilePic: string | null): Incoming => ({
  id: old.id,
  email,
  full_name: old.full_name,
  password_hash: old.password,
  profile_pic: profilePic,
  is_admin: old.is_superuser || old.is_staff,
  is_active: old.is_active,
  last_login: old.last_login,
  created_at: old.date_joined,
})

/**
 * Upserts the batch in one statement and returns the rows it wrote, `inserted` for the new ones: a row
 * equal to what is stored is not written, so a re-run writes nothing. A dry run rolls back.
 */
async function write(deps: ImportDeps, options: ImportOptions, incoming: Incoming[]) {
  const now = new Date(deps.clock.now())
  let written: { id: string; inserted: boolean }[] = []
  try {
    await deps.db.transaction(async (tx) => {
      written = await queryRows(tx, upsert(incoming, now))
      if (options.emitEvents) {
        const byId = new Map(incoming.map((row) => [row.id, row]))
        const events = written.map(({ id, inserted }) => ({ name: inserted ? 'user.created' : 'user.updated', user: toUserRow(byId.get(id)!, now) }) as const)
        await recordUserEvents(tx, events, now, deps.files)
      }
      if (options.dryRun) tx.rollback()
    })
  } catch (error) {
    if (!(error instanceof TransactionRollbackError)) throw error
  }
  return written
}

// The old service never verified addresses, and its users have used theirs all along: they arrive verified,
// so REQUIRE_EMAIL_VERIFICATION locks none of them out. A re-run leaves the flag as this service has it.
const upsert = (incoming: Incoming[], now: Date) => sql`
  insert into users (id, email, full_name, password_hash, profile_pic, is_admin, is_active, last_login, created_at, updated_at, email_verified)
  select *, ${now.toISOString()}::timestamptz, true
  from json_to_recordset(${JSON.stringify(incoming)}::json) as incoming(
    id uuid, email text, full_name text, password_hash text, profile_pic text,
    is_admin boolean, is_active boolean, last_login timestamptz, created_at timestamptz)
  on conflict (id) do update set
    email = excluded.email, full_name = excluded.full_name, password_hash = excluded.password_hash,
    profile_pic = excluded.profile_pic, is_admin = excluded.is_admin, is_active = excluded.is_active,
    last_login = excluded.last_login, created_at = excluded.created_at, updated_at = excluded.updated_at
  where (users.email, users.full_name, users.password_hash, users.profile_pic, users.is_admin, users.is_active, users.last_login, users.created_at)
      is distinct from
      (excluded.email, excluded.full_name, excluded.password_hash, excluded.profile_pic, excluded.is_admin, excluded.is_active, excluded.last_login, excluded.created_at)
    -- A login here since existingUsers() looked makes the account this service's too.
    and coalesce(users.last_login, '-infinity') <= coalesce(excluded.last_login, '-infinity')
  returning id, xmax = 0 as inserted`

const toUserRow = (row: Incoming, updatedAt: Date): UserRow => ({
  id: row.id,
  email: row.email,
  fullName: row.full_name,
  passwordHash: row.password_hash,
  profilePic: row.profile_pic,
  isAdmin: row.is_admin,
  isActive: row.is_active,
  emailVerified: true,
  lastLogin: row.last_login === null ? null : new Date(row.last_login),
  createdAt: new Date(row.created_at),
  updatedAt,
})

// A file left behind wastes space but breaks nothing, so a failed delete is logged, not raised.
async function deleteReplacedPictures(
  deps: ImportDeps,
  written: { id: string; inserted: boolean }[],
  existing: Map<string, Existing>,
  incoming: Incoming[],
) {
  const now = new Map(incoming.map((row) => [row.id, row.profile_pic]))
  const replaced = written.flatMap(({ id }) => {
    const before = existing.get(id)?.profile_pic
    return before && !isExternalPicture(before) && before !== now.get(id) ? [before] : []
  })
  await mapConcurrently(replaced, FILE_CONCURRENCY, (key) =>
    deps.files.delete(key).catch((err: unknown) => deps.logger.warn({ err, key }, 'could not delete a replaced profile picture')),
  )
}

// The next batch travels from the old database while this one is written to ours.
async function* readAhead<T>(batches: AsyncIterable<T>) {
  const iterator = batches[Symbol.asyncIterator]()
  let next = iterator.next()
  try {
    for (let result = await next; !result.done; result = await next) {
      next = iterator.next()
      yield result.value
    }
  } finally {
    // postgres.js closes a cursor only between batches: let the one in flight arrive first.
    await next.catch(() => {})
    await iterator.return?.()
  }
}

