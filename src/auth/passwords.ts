import { dictionary } from '@zxcvbn-ts/language-common'

export type Argon2Params = { memoryCost: number; timeCost: number }

export type Passwords = ReturnType<typeof createPasswords>

/** Hashing and verification with argon2id on Bun's thread pool, so the event loop stays free. */
export function createPasswords(params: Argon2Params) {
  const options = { algorithm: 'argon2id', ...params } as const
  // Login verifies against this when the email is unknown, so both cases cost the same time.
  const dummyHash = Bun.password.hash(crypto.randomUUID(), options)
  return {
    hash: (password: string) => Bun.password.hash(password, options),
    verify: (password: string, hash: string) => Bun.password.verify(password, hash).catch(() => false),
    verifyDummy: async (password: string) => {
      await Bun.password.verify(password, await dummyHash)
      return false
    },
  }
}

let commonPasswords: Set<string> | undefined

/** Django's CommonPasswordValidator, on the list @zxcvbn-ts/language-common maintains. */
export function isCommonPassword(password: string) {
  commonPasswords ??= new Set(dictionary['passwords-common'])
  return commonPasswords.has(password.toLowerCase())
}
