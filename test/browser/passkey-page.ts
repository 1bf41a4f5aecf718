// Bundled by passkeys.test.ts for the test page: the browser library a frontend would use.
import { startAuthentication, startRegistration } from '@simplewebauthn/browser'

Object.assign(globalThis, { startAuthentication, startRegistration })
