// Bundled by oidc.test.ts for the frontend's redirect page: what a web app does there with the client. The
// service's origin comes from the page (`serviceOrigin`), as the redirect URL must stay exactly as configured.
import { createUsersClient } from '../../src/client'

const users = createUsersClient({ baseUrl: (globalThis as unknown as { serviceOrigin: string }).serviceOrigin })

async function finish() {
  // Read and removed from the address bar before anything else.
  const redirect = users.oidc.takeRedirect()
  if (!redirect || 'error' in redirect) return { redirect }
  const signIn = await users.oidc.exchange(redirect.code)
  return { redirect, signIn, snapshot: users.auth.getSnapshot(), tokens: users.tokens, identities: await users.identities.list() }
}

Object.assign(globalThis, { users, done: finish() })
