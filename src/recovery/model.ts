import { t } from 'elysia'
import { email, password } from '../users/model'

const token = t.String({ minLength: 1, maxLength: 128, description: 'The `token` query parameter of the link' })
const code = t.String({ minLength: 1, maxLength: 16, description: 'The 6-digit code from the message' })
// Any string: a malformed address simply has no pending code, answered like a wrong one.
const codeEmail = t.String({ minLength: 1, maxLength: 254, description: 'The address the code was sent to' })

export const ResetRequestBody = t.Object({ email })

export const ResetConfirmBody = t.Object(
  { token: t.Optional(token), email: t.Optional(codeEmail), code: t.Optional(code), password },
  { description: '`{token, password}` from the link, or `{email, code, password}` from the code' },
)

export const VerifyBody = t.Object(
  { token: t.Optional(token), email: t.Optional(codeEmail), code: t.Optional(code) },
  { description: '`{token}` from the link, or `{email, code}` from the code' },
)

export const AcceptedBody = t.Object({ detail: t.String() }, { description: 'Accepted: any message leaves shortly, from the mail relay' })
