import { dictionary } from '@zxcvbn-ts/language-common'
import { djangoVerifier } from './django-passwords'
import { boundedConcurrency } from '../concurrency'

export type Argon2Params = { memoryCost: number; timeCost: number }

export type Passwords = ReturnType<typeof createPasswords>

const ARGON2ID_PARAMS = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=\d+\$/
const ARGON2_PHC = /^\$argon2(?:id|i|d)\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/

/**
 * Hashes in flight at once: two per core, so that the pool never idles between one hash and the next (one
 * per core hashed ~8% less here), while a burst of logins holds no hash memory per waiting request.
 */
export const HASHING_PARALLELISM = 2 * navigator.hardwareConcurrency

/** Hashing and verification with argon2id on Bun's thread pool, so the event loop stays free. */
export function createPasswords(params: Argon2Params, parallelism = HASHING_PARALLELISM) {
  const options = { algorithm: 'argon2id', ...params } as const
  const limited = boundedConcurrency(parallelism)
  // Login verifies against this when the email is unknown, so both cases cost the same time.
  const dummyHash = Bun.password.hash(crypto.randomUUID(), options)
  const verifyDummy = async (password: string) => {
    const hash = await dummyHash
    await limited(() => Bun.password.verify(password, hash))
    return false
  }
  return {
    hash: (password: string) => limited(() => Bun.password.hash(password, options)),

    /**
     * Checks our argon2id hashes and, for users imported from the old service, Django's formats. An
     * unusable password (Django's `!…`), an unknown format or a malformed hash never matches and costs
     * the dummy hash, as an unknown email does: answering at once would tell those accounts apart.
     * Django's formats cost what they cost (PBKDF2 at 870 000 iterations, bcrypt, Django's argon2 are
     * slower than our argon2id); that lasts only until the account's first login, which rehashes it.
     */
    async verify(password: string, hash: string) {
      const own = ARGON2_PHC.test(hash)
      const check = own ? (given: string) => Bun.password.verify(given, hash) : djangoVerifier(hash)
      if (!check) return verifyDummy(password)
      // DRF stripped surrounding whitespace before the old service hashed a password.
      const given = own ? password : password.trim()
      // A hash its parser refuses fails before any work, so it costs the dummy too.
      return limited(() => check(given)).catch(() => verifyDummy(password))
    },

    verifyDummy,

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
