import { t } from 'elysia'
import { text } from '../http/formats'
import { pictureUrl, type FileStore } from '../storage/files'
import type { UserRow } from '../users/table'

/** A user as an admin sees it: the public record, the email, and the account's state. */
export const AdminUser = t.Object({
  id: t.String({ description: 'UUID' }),
  email: t.String(),
  email_verified: t.Boolean(),
  full_name: t.String(),
  profile_pic: t.Union([t.String({ description: 'Absolute URL' }), t.Null()]),
  is_active: t.Boolean({ description: 'False once disabled: its login answers as wrong credentials do' }),
  is_admin: t.Boolean(),
  date_joined: t.String({ format: 'date-time' }),
  last_login: t.Union([t.String({ format: 'date-time' }), t.Null()]),
})

export const toAdminUser = (user: UserRow, files: Pick<FileStore, 'url'>): typeof AdminUser.static => ({
  id: user.id,
  email: user.email,
  email_verified: user.emailVerified,
  full_name: user.fullName,
  profile_pic: pictureUrl(files, user.profilePic),
  is_active: user.isActive,
  is_admin: user.isAdmin,
  date_joined: user.createdAt.toISOString(),
  last_login: user.lastLogin?.toISOString() ?? null,
})

export const DisableBody = t.Object({
  reason: text({ minLength: 1, maxLength: 500, description: 'Why, for the audit log (the user does not see it)' }),
})
