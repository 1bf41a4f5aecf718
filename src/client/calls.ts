import { browserGlobal } from './globals'
import { apiUrl, formOf, type CallOptions } from './request'
import { ok, type Result } from './result'
import type { Session, SignIn } from './session'
import type { TokenStorage } from './storage'
import type * as T from './types'

/** An OIDC code's exchange: a sign-in, or an account with that email the provider may not sign in to. */
export type ProviderSignIn = SignIn | { step: 'account_exists'; detail: string }

/** What the provider's round trip brought back to the frontend's redirect page. */
export type ProviderRedirect = { code: string } | { error: string }

/** The typed call of every flow the service offers, each answering a result; changes of the session go through `session`. */
export function usersCalls(session: Session, storage: TokenStorage, baseUrl: string) {
  const get = <Data>(path: string, query?: Record<string, unknown>, options?: CallOptions) =>
    session.call<Data>({ method: 'GET', path, query, auth: true, options })
  const authed = <Data>(method: string, path: string, body?: unknown, options?: CallOptions) =>
    session.call<Data>({ method, path, body, auth: true, options })
  const open = <Data>(path: string, body?: unknown, options?: CallOptions) => session.call<Data>({ method: 'POST', path, body, auth: false, options })
  const id = (value: string) => encodeURIComponent(value)
  const profile = async (result: Promise<Result<T.User>>) => {
    const answer = await result
    if (answer.ok) session.userUpdated(answer.data)
    return answer
  }

  return {
    /** Creates an account and signs in. A 400 names the fields, as the form shows them. */
    register: (body: T.RegisterBody, options?: CallOptions) => open<T.TokenPair>('/register', body, options).then(session.signIn),
    /** Signs in; an account with a second factor answers `step: 'mfa_required'`: ask for a code, then `loginMfa`. */
    login: (body: T.LoginBody, options?: CallOptions) => open<T.TokenPair>('/login', body, options).then(session.signIn),
    /** The login's second step: the `mfa_token` and a TOTP or recovery code. */
    loginMfa: (body: T.LoginMfaBody, options?: CallOptions) => open<T.TokenPair>('/login/mfa', body, options).then(session.signIn),
    /** Ends this session on the service and forgets it here and in the other tabs, even when the service cannot be reached. */
    async logout(options?: CallOptions): Promise<Result<void>> {
      const pair = storage.get()
      const answer = pair ? await authed<void>('POST', '/logout', { refresh: pair.refresh }, options) : ok(undefined)
      session.signedOut(pair)
      return answer
    },
    /** Ends every session of the user and forgets this one. */
    async logoutAll(options?: CallOptions): Promise<Result<void>> {
      const pair = storage.get()
      const answer = await authed<void>('POST', '/logout-all', undefined, options)
      session.signedOut(pair)
      return answer
    },
    /** Rotates the pair now (one refresh for all tabs that ask together); requests refresh by themselves when needed. */
    refresh: () => session.refresh(),

    /** The caller's own User; the cached user follows it. */
    me: (options?: CallOptions) => profile(get<T.User>('/me', undefined, options)),
    /** A partial update of `full_name`, `email`, `password` (those two with `current_password`) or `profile_pic`. */
    updateProfile(body: T.ProfileUpdate, options?: CallOptions) {
      const form = Object.values(body).some((value) => value instanceof Blob) ? formOf(body) : body
      return profile(authed<T.User>('PATCH', '/update', form, options))
    },
    /** Sets the profile picture: a `File` from an `<input type="file">`, or any Blob. */
    uploadPicture: (picture: Blob, options?: CallOptions) => profile(authed<T.User>('PATCH', '/update', formOf({ profile_pic: picture }), options)),
    removePicture: (options?: CallOptions) => profile(authed<T.User>('PATCH', '/update', { profile_pic: null }, options)),
    /** Deletes the caller's account (every session ends); signs out here and in the other tabs. */
    async deleteAccount(options?: CallOptions): Promise<Result<void>> {
      const pair = storage.get()
      let ownId = session.user()?.id
      if (!ownId) {
        const me = await get<T.User>('/me', undefined, options)
        if (!me.ok) return me
        ownId = me.data.id
      }
      const answer = await authed<void>('DELETE', `/${id(ownId)}`, undefined, options)
      if (answer.ok) session.signedOut(pair)
      return answer
    },

    users: {
      /** Another user's public profile (yours, or an admin's view, has `email`). */
      get: (userId: string, options?: CallOptions) => get<T.PublicUser>(`/${id(userId)}`, undefined, options),
      /** The directory: `{ids}` for many users at once, or `{search, page, page_size}`. */
      list: (query: T.DirectoryQuery = {}, options?: CallOptions) => get<T.DirectoryPage>('', query, options),
    },
    sessions: {
      /** The caller's live sessions, `current` marking this one. */
      list: (options?: CallOptions) => get<T.Session[]>('/sessions', undefined, options),
      /** Ends one of the caller's sessions (another device). */
      revoke: (sessionId: string, options?: CallOptions) => authed<void>('DELETE', `/sessions/${id(sessionId)}`, undefined, options),
    },
    /** The caller's security events, newest first. */
    securityLog: (query: T.SecurityLogQuery = {}, options?: CallOptions) => get<T.SecurityLogPage>('/me/security-log', query, options),

    password: {
      /** Sends the reset message; 202 whether or not an account uses the address. */
      requestReset: (email: string, options?: CallOptions) => open<T.Accepted>('/password/reset', { email }, options),
      /** `{token, password}` from the link, or `{email, code, password}`; signs in (or asks for the second factor). */
      confirmReset: (body: T.PasswordResetConfirmBody, options?: CallOptions) => open<T.TokenPair>('/password/reset/confirm', body, options).then(session.signIn),
    },
    email: {
      /** `{token}` from the link, or `{email, code}`; the cached user follows when it is the caller. */
      async verify(body: T.EmailVerifyBody, options?: CallOptions) {
        const answer = await open<T.User>('/email/verify', body, options)
        if (answer.ok && answer.data.id === session.user()?.id) session.userUpdated(answer.data)
        return answer
      },
      /** Sends the verification message again to the caller's address. */
      resendVerification: (options?: CallOptions) => authed<T.Accepted>('POST', '/email/verify/resend', undefined, options),
    },
    mfa: {
      list: (options?: CallOptions) => get<T.MfaFactors>('/mfa', undefined, options),
      /** Starts adding an authenticator app: show `otpauth_url` as a QR code, then `confirmTotp` with its code. */
      enrolTotp: (body: { current_password: string; name?: string }, options?: CallOptions) => authed<T.TotpEnrolment>('POST', '/mfa/totp', body, options),
      /** Enables the app; answers the recovery codes, to show once. */
      confirmTotp: (factorId: string, code: string, options?: CallOptions) =>
        authed<T.RecoveryCodes>('POST', `/mfa/totp/${id(factorId)}/confirm`, { code }, options),
      regenerateRecoveryCodes: (currentPassword: string, options?: CallOptions) =>
        authed<T.RecoveryCodes>('POST', '/mfa/recovery-codes', { current_password: currentPassword }, options),
      /** Removes a factor (an app or a passkey). */
      remove: (factorId: string, currentPassword: string, options?: CallOptions) =>
        authed<void>('DELETE', `/mfa/${id(factorId)}`, { current_password: currentPassword }, options),
    },
    passkeys: {
      /** Options for `navigator.credentials.create` (`startRegistration({ optionsJSON })`). */
      registrationOptions: (currentPassword: string, options?: CallOptions) =>
        authed<T.PasskeyRegistrationOptions>('POST', '/passkeys/register/options', { current_password: currentPassword }, options),
      /** The browser's answer, `{credential, name?}`; answers the passkey with new recovery codes. */
      register: (body: T.PasskeyRegistrationBody, options?: CallOptions) => authed<T.Passkey>('POST', '/passkeys/register', body, options),
      /** Options for `navigator.credentials.get` (`startAuthentication({ optionsJSON })`). */
      loginOptions: (options?: CallOptions) => open<T.PasskeyLoginOptions>('/passkeys/login/options', undefined, options),
      /** Signs in with the browser's answer, `{credential}`: no email, no password. */
      login: (body: T.PasskeyLoginBody, options?: CallOptions) => open<T.TokenPair>('/passkeys/login', body, options).then(session.signIn),
      remove: (factorId: string, currentPassword: string, options?: CallOptions) =>
        authed<void>('DELETE', `/mfa/${id(factorId)}`, { current_password: currentPassword }, options),
    },

    oidc: {
      /** The page to open (`location.assign`) to sign in with `provider`; it comes back to `redirectUri` (on OAUTH_REDIRECT_URLS). */
      authorizeUrl: (provider: string, redirectUri: string) =>
        `${apiUrl(baseUrl, `/oauth/${id(provider)}/authorize`)}/?redirect_uri=${encodeURIComponent(redirectUri)}`,
      /**
       * On the redirect page: the `code` or `error` the sign-in came back with, or null. Without `href` it reads the
       * page's address and removes them from it, so that the one-time code stays out of the history.
       */
      takeRedirect(href?: string): ProviderRedirect | null {
        const location = browserGlobal<{ href: string }>('location')
        const url = new URL(href ?? location?.href ?? 'about:blank')
        const [code, error] = [url.searchParams.get('code'), url.searchParams.get('error')]
        if (href === undefined && (code !== null || error !== null)) {
          url.searchParams.delete('code')
          url.searchParams.delete('error')
          browserGlobal<{ replaceState(data: null, unused: string, url: string): void }>('history')?.replaceState(null, '', url.href)
        }
        return error !== null ? { error } : code !== null ? { code } : null
      },
      /**
       * Exchanges the redirect's one-time code: signed in, a second factor needed, or `account_exists` (sign in, then
       * link). Sent with the session's access token when there is one: a link's code links only for its own user.
       */
      async exchange(code: string, options?: CallOptions): Promise<Result<ProviderSignIn>> {
        const answer = await session.signIn(await authed<T.TokenPair>('POST', '/oauth/token', { code }, options))
        if (!answer.ok && answer.error.kind === 'http' && answer.error.status === 409 && answer.error.code === 'account_exists')
          return ok({ step: 'account_exists', detail: answer.error.detail ?? '' })
        return answer
      },
    },
    identities: {
      /** The caller's linked provider accounts. */
      list: (options?: CallOptions) => get<T.Identity[]>('/identities', undefined, options),
      /** Starts linking `provider` to the caller: send the browser to the answer's `authorization_url`. */
      link: (provider: string, redirectUri: string, options?: CallOptions) =>
        authed<T.LinkStart>('POST', `/identities/${id(provider)}`, { redirect_uri: redirectUri }, options),
      /** Unlinks one; 409 `last_sign_in_method` when it is the last way into the account. */
      unlink: (identityId: string, options?: CallOptions) => authed<void>('DELETE', `/identities/${id(identityId)}`, undefined, options),
    },
    /** The admin API: a caller who is not an admin gets 403 `permission_denied` from each. */
    admin: {
      /** Accounts by part of the email or the start of a name, with their state. */
      users: (query: T.AdminUsersQuery = {}, options?: CallOptions) => get<T.AdminUsersPage>('/admin/users', query, options),
      /** Disables an account: its sessions end at once; the reason goes to the audit log. */
      disable: (userId: string, reason: string, options?: CallOptions) =>
        authed<T.AdminUser>('POST', `/admin/users/${id(userId)}/disable`, { reason }, options),
      enable: (userId: string, options?: CallOptions) => authed<T.AdminUser>('POST', `/admin/users/${id(userId)}/enable`, undefined, options),
      /** Ends every session of an account. */
      logout: (userId: string, options?: CallOptions) => authed<void>('POST', `/admin/users/${id(userId)}/logout`, undefined, options),
      /** Security events of every account, newest first, by user and type. */
      audit: (query: T.AuditQuery = {}, options?: CallOptions) => get<T.AuditPage>('/admin/audit', query, options),
    },
  }
}
