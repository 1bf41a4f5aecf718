// Bundled by passkeys.test.ts for the test page: the browser library a frontend would use, driven through the
// typed client (its calls take @simplewebauthn/browser's shapes as they are).
import { startAuthentication, startRegistration } from '@simplewebauthn/browser'
import { createUsersClient, memoryStorage, type Result } from '../../src/client'

type Answer = { status: number; body: any }

const origin = (globalThis as unknown as { location: { origin: string } }).location.origin
const client = (access?: string) =>
  createUsersClient({ baseUrl: origin, storage: memoryStorage(access ? { access, refresh: '' } : null), channel: false, loadUser: false })

/** The result as the test reads answers: the status and body the service sent. */
const answer = (result: Result<unknown>): Answer =>
  result.ok ? { status: 200, body: result.data } : result.error.kind === 'http' ? { status: result.error.status, body: result.error.body } : { status: 0, body: result.error.detail }

/** Registers a passkey: the options, navigator.credentials.create, then the answer posted back. */
async function registerPasskey(access: string, currentPassword: string): Promise<{ options: Answer; registered?: Answer }> {
  const users = client(access)
  const options = await users.passkeys.registrationOptions(currentPassword)
  if (!options.ok) return { options: answer(options) }
  const credential = await startRegistration({ optionsJSON: options.data as unknown as Parameters<typeof startRegistration>[0]['optionsJSON'] })
  return { options: answer(options), registered: answer(await users.passkeys.register({ credential, name: 'This browser' })) }
}

/** Signs in with the passkey: no email, no password; answers the tokens the client now holds. */
async function signInWithPasskey(): Promise<Answer> {
  const users = client()
  const options = await users.passkeys.loginOptions()
  if (!options.ok) return answer(options)
  try {
    const credential = await startAuthentication({ optionsJSON: options.data as unknown as Parameters<typeof startAuthentication>[0]['optionsJSON'] })
    const signedIn = await users.passkeys.login({ credential })
    return signedIn.ok ? { status: 200, body: users.tokens } : answer(signedIn)
  } catch (error) {
    return { status: 0, body: String(error) }
  }
}

Object.assign(globalThis, { startAuthentication, registerPasskey, signInWithPasskey })
