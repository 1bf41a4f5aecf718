import { t } from 'elysia'
import { text } from '../http/formats'

export const ProviderParams = t.Object({ provider: t.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$', description: 'A name from OIDC_PROVIDERS' }) })

export const IdentityIdParams = t.Object({ id: t.String({ format: 'uuid' }) })

const redirectUri = text({ minLength: 1, maxLength: 2048, description: 'Exactly one of OAUTH_REDIRECT_URLS: where the browser comes back with `?code=` or `?error=`' })

export const AuthorizeQuery = t.Object({ redirect_uri: redirectUri })

export const LinkBody = t.Object({ redirect_uri: redirectUri })

// What a provider sends back (RFC 6749 §4.1.2, RFC 9207's iss); the handler reads the whole query string as sent.
const callbackValue = t.Optional(t.String({ maxLength: 4096 }))
export const CallbackQuery = t.Object({
  state: callbackValue,
  code: callbackValue,
  iss: callbackValue,
  error: callbackValue,
  error_description: callbackValue,
})

export const CodeBody = t.Object({ code: text({ minLength: 1, maxLength: 256, description: "The `code` of the callback's redirect: single-use, lives 1 minute" }) })

export const AuthorizationUrl = t.Object({ authorization_url: t.String({ description: "The provider's page to send the browser to" }) })

export const Identity = t.Object({
  id: t.String({ description: 'UUID' }),
  provider: t.String({ description: 'The name from OIDC_PROVIDERS' }),
  email: t.Union([t.String(), t.Null()], { description: 'The address the provider gave at the last sign-in' }),
  created_at: t.String({ format: 'date-time' }),
  last_used_at: t.Union([t.String({ format: 'date-time' }), t.Null()]),
})

export const Redirect = t.Void({ description: 'A redirect: see the Location header' })
