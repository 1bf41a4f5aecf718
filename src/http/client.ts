/** Who is calling, as far as a session record and the rate limits need to know. */
export type Client = { ip: string | null; userAgent: string | null }

/**
 * The caller's address: the socket's, or, behind `trustedHops` proxies, the entry they appended to
 * X-Forwarded-For. Entries left of that are the client's own claims and are never trusted.
 */
export function clientAddress(request: Request, socketAddress: string | undefined, trustedHops: number): string | null {
  if (trustedHops === 0) return socketAddress ?? null
  const forwarded = (request.headers.get('x-forwarded-for') ?? '').split(',').map((entry) => entry.trim()).filter(Boolean)
  return forwarded[forwarded.length - trustedHops] ?? socketAddress ?? null
}

/** What a handler's `server` offers here: the socket's address (none when the app is called in process). */
export type RequestServer = { requestIP(request: Request): { address: string } | null } | null

/** The caller of a request, for a route's `derive`: its address as {@link clientAddress} finds it, and its user agent. */
export const requestClient = (request: Request, server: RequestServer, trustedHops: number): Client => ({
  ip: clientAddress(request, server?.requestIP(request)?.address, trustedHops),
  userAgent: request.headers.get('user-agent'),
})
