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

/** The 403 of a login that needs its second step. */
export const MfaRequiredBody = t.Object(
  {
    detail: t.String(),
    code: t.String(),
    mfa_token: t.Optional(t.String({ description: 'For POST /api/users/login/mfa/: lives 5 minutes, allows 5 wrong codes' })),
    methods: t.Optional(t.Array(t.Union([t.Literal('totp'), t.Literal('recovery_code'), t.Literal('passkey')]))),
  },
  { description: '`mfa_required` with `mfa_token` and `methods`; or another refusal (`email_not_verified`)' },
)
