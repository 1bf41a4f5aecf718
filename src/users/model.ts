import { t } from 'elysia'
import { text } from '../http/formats'
import { pictureUrl, type FileStore } from '../storage/files'
import type { UserRow } from './table'

/** An email as the API accepts and returns it. */
export const email = t.String({ format: 'email', maxLength: 254, examples: ['ann@example.com'] })
const fullName = text({ minLength: 1, maxLength: 250, examples: ['Ann Smith'] })
export const password = text({ minLength: 8, maxLength: 128 })

export const User = t.Object(
  {
    // Our own output: described, not format-checked, on the hottest response of the service.
    id: t.String({ description: 'UUID' }),
    email: t.Optional(t.String({ description: 'Lower-cased' })),
    email_verified: t.Optional(t.Boolean({ description: 'Whether the address was proven by a verification link or code' })),
    full_name: t.String(),
    profile_pic: t.Union([t.String({ description: 'Absolute URL' }), t.Null()]),
  },
  { description: "A user; `email` and `email_verified` are present only on the caller's own record" },
)
export type UserBody = typeof User.static

export const UserIdParams = t.Object({ id: t.String({ format: 'uuid' }) })

export const RegisterBody = t.Object({ email, full_name: fullName, password })

export const UpdateBody = t.Object({
  email: t.Optional(email),
  full_name: t.Optional(fullName),
  password: t.Optional(password),
  current_password: t.Optional(text({ maxLength: 128 })),
  profile_pic: t.Optional(
    t.Union([t.File({ description: 'JPEG, PNG, WebP or GIF' }), t.Literal(''), t.Null()], {
      description: 'A new picture (multipart), or empty / null to remove it',
    }),
  ),
})
export type UpdateBody = typeof UpdateBody.static

/** The public shape of a user row (also the events' wire body); the email only when the reader may see it. */
export const toUserBody = (user: UserRow, withEmail: boolean, files: Pick<FileStore, 'url'>): UserBody => ({
  id: user.id,
  ...(withEmail && { email: user.email, email_verified: user.emailVerified }),
  full_name: user.fullName,
  profile_pic: pictureUrl(files, user.profilePic),
})

// GET /me and /{id} answer from the guard's cached rows: a row changes only by being replaced, so each
// row's two bodies are built once and live as long as the row does.
const bodies = new WeakMap<UserRow, { files: Pick<FileStore, 'url'>; own?: UserBody; public?: UserBody }>()

/** {@link toUserBody}, built once per row object (for the rows the user cache hands out). */
export function cachedUserBody(user: UserRow, withEmail: boolean, files: Pick<FileStore, 'url'>): UserBody {
  let entry = bodies.get(user)
  if (entry?.files !== files) bodies.set(user, (entry = { files }))
  return withEmail ? (entry.own ??= toUserBody(user, true, files)) : (entry.public ??= toUserBody(user, false, files))
}

/** The old service trimmed these two fields (not passwords); an Elysia transform runs this before validation. */
export function trimNameAndEmail(body: unknown) {
  if (typeof body !== 'object' || body === null) return
  const fields = body as Record<string, unknown>
  for (const key of ['email', 'full_name']) if (typeof fields[key] === 'string') fields[key] = fields[key].trim()
}
