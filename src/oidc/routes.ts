import { Elysia, t } from 'elysia'
import { MfaRequiredBody, TokenPairBody } from '../auth/model'
import { requestClient } from '../http/client'
import { ErrorBody, FieldErrorsBody } from '../http/errors'
import { authenticator, authGuard, type GuardDeps } from '../users/guard'
import { AuthorizationUrl, AuthorizeQuery, CallbackQuery, CodeBody, Identity, IdentityIdParams, LinkBody, ProviderParams, Redirect } from './model'
import { authorizationUrl, BROWSER_COOKIE, completeAuthorization, exchangeCode, isBrowserKey, listIdentities, newBrowserKey, unlinkIdentity, STATE_SECONDS, type OidcDeps } from './service'

const providerFailures = { 404: ErrorBody, 429: ErrorBody, 502: ErrorBody, 503: ErrorBody }
const authErrors = { 401: ErrorBody, 503: ErrorBody }

/** Sign in with an OpenID Connect provider, and the caller's linked provider accounts. */
export const oidcRoutes = (deps: OidcDeps & GuardDeps) => {
  // The browser cookie goes only to the authorize and callback routes, where the browser sees them (PUBLIC_URL's path included).
  const publicUrl = new URL(deps.config.publicUrl)
  const browserCookie = {
    httpOnly: true,
    // Sent on the provider's redirect back (a top-level GET), not on a cross-site request of another kind.
    sameSite: 'lax',
    secure: publicUrl.protocol === 'https:',
    path: `${publicUrl.pathname.replace(/\/$/, '')}/api/users/oauth/`,
    maxAge: STATE_SECONDS,
  } as const
  const authenticate = authenticator(deps)
  return new Elysia({ prefix: '/api/users', tags: ['oidc'] })
    .use(authGuard(deps))
    .derive(({ request, server }) => ({ client: requestClient(request, server, deps.config.trustedProxyHops) }))
    .get(
      '/oauth/:provider/authorize',
      async ({ params, query, client, cookie, redirect }) => {
        // One key per browser, kept while it signs in again (several tabs, several tries).
        const key = isBrowserKey(cookie[BROWSER_COOKIE]?.value) ? cookie[BROWSER_COOKIE].value : newBrowserKey()
        const url = await authorizationUrl(deps, params.provider, query.redirect_uri, client, { browser: key })
        cookie[BROWSER_COOKIE]!.set({ value: key, ...browserCookie })
        return redirect(url, 302)
      },
      {
        params: ProviderParams,
        query: AuthorizeQuery,
        response: { 302: Redirect, 400: FieldErrorsBody, ...providerFailures },
        detail: {
          summary: "Start a sign-in: a redirect to the provider's login page",
          description:
            'Open in the browser (not with fetch), on PUBLIC_URL. `redirect_uri` must be one of OAUTH_REDIRECT_URLS (else 400 naming it); the provider is discovered on first use (503 `provider_unavailable`, 502 `provider_invalid`). State, nonce and PKCE are kept server-side for 10 minutes, bound to this browser by the `oidc_browser` cookie (HttpOnly, SameSite=Lax, only on /api/users/oauth/).',
        },
      },
    )
    .get(
      '/oauth/:provider/callback',
      async ({ params, request, client, cookie, redirect }) => {
        const key = cookie[BROWSER_COOKIE]?.value
        return redirect(await completeAuthorization(deps, params.provider, new URL(request.url).searchParams, client, isBrowserKey(key) ? key : undefined), 302)
      },
      {
        params: ProviderParams,
        query: CallbackQuery,
        response: { 302: Redirect, 400: FieldErrorsBody, 404: ErrorBody, 503: ErrorBody },
        detail: {
          summary: 'Where the provider sends the browser back; redirects to the redirect_uri with `?code=` or `?error=<code>`',
          description:
            'Register `{PUBLIC_URL}/api/users/oauth/{provider}/callback/` at the provider. A missing, unknown, tampered or used `state`, or the callback of a sign-in in a browser without the `oidc_browser` cookie of the one that started it, is a 400 naming `state` (nowhere safe to redirect to). Error codes: access_denied, provider_error, provider_unavailable, invalid_id_token, email_required, identity_in_use, temporarily_unavailable.',
        },
      },
    )
    .post('/oauth/token', ({ body, client, headers }) => exchangeCode(deps, body.code, client, () => authenticate(headers.authorization)), {
      body: CodeBody,
      response: { 200: TokenPairBody, 400: FieldErrorsBody, 401: ErrorBody, 403: t.Union([MfaRequiredBody, ErrorBody]), 409: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      detail: {
        summary: "Exchange the callback's one-time code for a session",
        description:
          'Single-use, lives 1 minute. 409 `account_exists` when the email belongs to an account the provider may not sign in to (sign in to it and link the provider from settings); 403 `mfa_required` with `mfa_token` for an account with a second factor, as a login. The access token carries `amr: ["oidc"]`. The code of a link from settings links only when sent with the access token of the user who started the link (401 without one, 403 `link_not_yours` for another user; either way it is spent and nothing is linked).',
      },
    })
    .get('/identities', ({ user }) => listIdentities(deps, user.id), {
      auth: true,
      response: { 200: t.Array(Identity), ...authErrors },
      detail: { summary: "The caller's linked provider accounts, oldest first" },
    })
    .post('/identities/:provider', async ({ user, params, body, client }) => ({ authorization_url: await authorizationUrl(deps, params.provider, body.redirect_uri, client, { linkUserId: user.id }) }), {
      auth: true,
      params: ProviderParams,
      body: LinkBody,
      response: { 200: AuthorizationUrl, 400: FieldErrorsBody, 401: ErrorBody, ...providerFailures },
      detail: {
        summary: 'Start linking a provider to the caller: the URL to send the browser to',
        description:
          "The callback links the provider's account to the caller (`?error=identity_in_use` if another user has it) and redirects with a code whose exchange signs the caller in again, as a sign-in with that provider.",
      },
    })
    .delete(
      '/identities/:id',
      async ({ user, params, client, set }) => {
        await unlinkIdentity(deps, user.id, params.id, client)
        set.status = 204
      },
      {
        auth: true,
        params: IdentityIdParams,
        response: { 204: t.Void(), 404: ErrorBody, 409: ErrorBody, ...authErrors },
        detail: { summary: 'Unlink a provider account; 409 `last_sign_in_method` when it is the last way to sign in' },
      },
    )
}
