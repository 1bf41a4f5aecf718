import type { KeyObject } from 'node:crypto'

/** EdDSA for Ed25519, ES256 for P-256; anything else is refused at start-up. */
export function algorithmOf(key: KeyObject): 'EdDSA' | 'ES256' {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new Error(`unsupported key type ${key.asymmetricKeyType}`)
}
