import * as oidc from 'openid-client'
import { backoffDelay } from '../backoff'
import type { Clock } from '../clock'
import type { OidcProviderSettings } from '../config'
import type { Logger } from '../logger'
import { OIDC_ERRORS } from './errors'

/** The configured identity providers, each discovered on first use. */
export type OidcProviders = {
  /** The provider's settings, or undefined when none has that name. */
  settings(name: string): OidcProviderSettings | undefined
  /** The provider's client configuration: discovered once and kept; a 503 or 502 ServiceError when discovery fails. */
  client(name: string): Promise<oidc.Configuration>
}

// After a failed discovery, requests fail at once until the next try is due: an unreachable provider costs
// one attempt per interval per instance, not one per sign-in.
const RETRY = { initialMs: 1_000, maxMs: 30_000 }
// Seconds openid-client waits for any answer of a provider (discovery, token, JWKS, userinfo).
const REQUEST_TIMEOUT_SECONDS = 10

type Entry = { settings: OidcProviderSettings; client?: oidc.Configuration; pending?: Promise<oidc.Configuration>; failures: number; retryAt: number; error?: Error }

/**
 * Discovery per provider, lazily and cached, retried after a failure with the shared backoff. The client
 * checks the ID token's signature against the provider's JWKS (non-repudiation checks): a token endpoint
 * answer is otherwise trusted on TLS alone, which an http:// development provider does not have.
 */
export function createOidcProviders(options: {
  providers: OidcProviderSettings[]
  allowHttp: boolean
  clock: Clock
  logger: Pick<Logger, 'warn'>
}): OidcProviders {
  const entries = new Map(options.providers.map((settings) => [settings.name, { settings, failures: 0, retryAt: 0 } as Entry]))

  async function discover(entry: Entry) {
    const { issuer, clientId, clientSecret } = entry.settings
    const execute = options.allowHttp ? [oidc.allowInsecureRequests] : []
    const found = await oidc.discovery(new URL(issuer), clientId, clientSecret, oidc.ClientSecretBasic(clientSecret), { execute, timeout: REQUEST_TIMEOUT_SECONDS })
    const metadata = found.serverMetadata()
    // Basic is the default when a provider lists no method; a provider that takes only the form post gets it.
    const methods = metadata.token_endpoint_auth_methods_supported
    const auth = methods && !methods.includes('client_secret_basic') && methods.includes('client_secret_post') ? oidc.ClientSecretPost(clientSecret) : oidc.ClientSecretBasic(clientSecret)
    const client = new oidc.Configuration(metadata, clientId, clientSecret, auth)
    for (const step of execute) step(client)
    oidc.enableNonRepudiationChecks(client)
    client.timeout = REQUEST_TIMEOUT_SECONDS
    return client
  }

  return {
    settings: (name) => entries.get(name)?.settings,
    async client(name) {
      const entry = entries.get(name)
      if (!entry) throw OIDC_ERRORS.providerNotFound()
      if (entry.client) return entry.client
      if (entry.error && options.clock.now() < entry.retryAt) throw entry.error
      // One discovery at a time per provider: parallel sign-ins wait for the same answer.
      entry.pending ??= discover(entry)
        .then((client) => {
          entry.client = client
          return client
        })
        .catch((err: unknown) => {
          entry.failures++
          entry.retryAt = options.clock.now() + backoffDelay(entry.failures, RETRY)
          const reason = err instanceof Error ? [err.name, (err as { code?: unknown }).code, err.message].filter(Boolean).join(': ') : String(err)
          options.logger.warn({ provider: name, issuer: entry.settings.issuer, reason }, 'identity provider discovery failed')
          entry.error = providerFailure(err)
          throw entry.error
        })
        .finally(() => {
          entry.pending = undefined
        })
      return entry.pending
    },
  }
}

/** Whether a provider request failed to get any answer (refused, reset, timed out), rather than a wrong one. */
export function isUnreachable(err: unknown) {
  return !(err instanceof oidc.ClientError) && (err instanceof TypeError || (err instanceof Error && ['TimeoutError', 'AbortError'].includes(err.name)))
}

// Unreachable is a 503 (try again soon); an answer that is not a usable configuration is the provider's fault, a 502.
const providerFailure = (err: unknown) => (isUnreachable(err) ? OIDC_ERRORS.providerUnavailable() : OIDC_ERRORS.providerInvalid())
