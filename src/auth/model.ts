import { t } from 'elysia'
import { text } from '../http/formats'

export const TokenPairBody = t.Object(
  { refresh: t.String(), access: t.String() },
  { description: 'A JWT pair; send `access` as `Authorization: JWT <access>`' },
)

// Login checks credentials, not the registration rules, so that no rule change locks anyone out.
export const LoginBody = t.Object({
  email: text({ minLength: 1, maxLength: 254 }),
  password: text({ minLength: 1, maxLength: 1024 }),
})

export const RefreshBody = t.Object({ refresh: t.String({ minLength: 1 }) })
