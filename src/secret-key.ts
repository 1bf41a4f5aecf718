import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The embedded default's signing secret: generated once, then kept in the data folder so tokens survive restarts. */
export function loadOrCreateSecretKey(dataDir: string): { secretKey: string; created: boolean } {
  const file = join(dataDir, 'secret_key')
  if (existsSync(file)) return { secretKey: readFileSync(file, 'utf8').trim(), created: false }
  mkdirSync(dataDir, { recursive: true })
  const secretKey = Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64url')
  writeFileSync(file, secretKey, { mode: 0o600, flag: 'wx' })
  return { secretKey, created: true }
}
