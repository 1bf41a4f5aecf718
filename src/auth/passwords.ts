import { dictionary } from '@zxcvbn-ts/language-common'
import { isDjangoHash, verifyDjangoPassword } from './django-passwords'

export type Argon2Params = { memoryCost: number; timeCost: number }

export type Passwords = ReturnType<typeof createPasswords>

const ARGON2ID_PARAMS = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=\d+\$/

/** Hashing and verification with argon2id on Bun's thread pool, so the event loop stays free. */
export function createPasswords(params: Argon2Params) {
  const options = { algorithm: 'argon2id', ...params } as const
  // Login verifies against this when the email is unknown, so both cases cost the same time.
  const dummyHash = Bun.password.hash(crypto.randomUUID(), options)
  return {
    hash: (password: string) => Bun.password.hash(password, options),

    /** Checks our argon2id hashes and, for users imported from the old service, Django's formats. */
    async verify(password: string, hash: string) {
      if (hash.startsWith('$argon2')) return Bun.password.verify(password, hash).catch(() => false)
      // DRF stripped surrounding whitespace before the old service hashed a password.
      return isDjangoHash(hash) && verifyDjangoPassword(password.trim(), hash)
    },

    verifyDummy: async (password: string) => {
      await Bun.password.verify(password, await dummyHash)
      return false
    },

    /** Whether a hash that just verified should be replaced: another format, or argon2id below today's cost. */
    needsRehash(hash: string) {
      const match = ARGON2ID_PARAMS.exec(hash)
      return !match || Number(match[1]) < params.memoryCost || Number(match[2]) < params.timeCost
    },

    /** The password to hash when upgrading `hash`: the old service's hashes were made from the stripped password. */
    canonical: (password: string, hash: string) => (hash.startsWith('$argon2') ? password : password.trim()),
  }
}

let commonPasswords: Set<string> | undefined

/** Django's CommonPasswordValidator, on the list @zxcvbn-ts/language-common maintains. */
export function isCommonPassword(password: string) {
  commonPasswords ??= new Set(dictionary['passwords-common'])
  return commonPasswords.has(password.toLowerCase())
}
