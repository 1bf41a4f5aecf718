import { describe, expect, test } from 'bun:test'
import { isDjangoHash, verifyDjangoPassword } from '../src/users/django-passwords.ts'

type Fixtures = {
  cases: { hasher: string; password: string; encoded: string }[]
  unusable: { encoded: string }[]
  wrong_passwords: string[]
}

const fixtures: Fixtures = await Bun.file(
  new URL('./fixtures/django-password-hashes.json', import.meta.url),
).json()

// argon2 at m=100 MB and bcrypt at cost 12 are slow by design.
const SLOW = 60_000

function caseFor(hasher: string, minPasswordBytes = 0, encodedContains = '') {
  const found = fixtures.cases.find(
    (c) =>
      c.hasher === hasher && Buffer.byteLength(c.password) >= minPasswordBytes && c.encoded.includes(encodedContains),
  )
  if (!found) throw new Error(`fixture has no ${hasher} case`)
  return found
}

/** Runs every check at once and returns the ones whose result differs from `expected`. */
async function mismatches(checks: { password: string; encoded: string }[], expected: boolean) {
  const results = await Promise.all(
    checks.map(async (check) => ({
      ...check,
      result: await verifyDjangoPassword(check.password, check.encoded),
    })),
  )
  return results.filter((r) => r.result !== expected)
}

describe('verifyDjangoPassword', () => {
  test('the fixture covers every supported hasher', () => {
    const hashers = new Set(fixtures.cases.map((c) => c.hasher))
    expect([...hashers].sort()).toEqual(['argon2', 'bcrypt', 'bcrypt_sha256', 'pbkdf2_sha1', 'pbkdf2_sha256'])
  })

  test(
    'every fixture hash matches its own password',
    async () => {
      expect(await mismatches(fixtures.cases, true)).toEqual([])
    },
    SLOW,
  )

  test(
    'every wrong password fails against every fixture hash',
    async () => {
      const checks = fixtures.wrong_passwords.flatMap((password) =>
        fixtures.cases.map(({ encoded }) => ({ password, encoded })),
      )
      expect(await mismatches(checks, false)).toEqual([])
    },
    SLOW,
  )

  test('a password is compared exactly, so surrounding whitespace does not match', async () => {
    const { password, encoded } = caseFor('pbkdf2_sha256')
    const checks = [` ${password}`, `${password} `, `${password}\n`].map((p) => ({ password: p, encoded }))
    expect(await mismatches(checks, false)).toEqual([])
  })

  test(
    "plain bcrypt ignores bytes after the 72nd, as Django's bcrypt hasher did",
    async () => {
      const { password, encoded } = caseFor('bcrypt', 73)
      expect(await verifyDjangoPassword(`${password.slice(0, 72)}-different-tail`, encoded)).toBe(true)
    },
    SLOW,
  )

  test(
    'every other hasher rejects a long password that differs only after the 72nd byte',
    async () => {
      const checks = ['bcrypt_sha256', 'argon2', 'pbkdf2_sha256', 'pbkdf2_sha1'].map((hasher) => {
        const { password, encoded } = caseFor(hasher, 73)
        return { password: `${password.slice(0, 72)}-different-tail`, encoded }
      })
      expect(await mismatches(checks, false)).toEqual([])
    },
    SLOW,
  )

  test('an unusable password never matches, whatever is typed', async () => {
    const unusable = fixtures.unusable.map((u) => u.encoded)
    const typed = [
      '',
      '!',
      ...unusable,
      ...unusable.map((encoded) => encoded.slice(1)),
      ...fixtures.cases.map((c) => c.password),
      ...fixtures.wrong_passwords,
    ]
    const encodedValues = [...unusable, '!', `!${caseFor('pbkdf2_sha256').encoded}`]
    const checks = encodedValues.flatMap((encoded) => typed.map((password) => ({ password, encoded })))
    expect(await mismatches(checks, false)).toEqual([])
  })

  test(
    'malformed or unknown hashes return false without throwing, even with the right password',
    async () => {
      const pbkdf2 = caseFor('pbkdf2_sha256')
      const argon2 = caseFor('argon2')
      const bcrypt = caseFor('bcrypt')
      const [, iterations, salt, hash = ''] = pbkdf2.encoded.split('$')
      const argon2Phc = argon2.encoded.slice('argon2'.length)
      const bcryptInner = bcrypt.encoded.slice('bcrypt$'.length)
      const withPassword = (password: string, encodedValues: string[]) =>
        encodedValues.map((encoded) => ({ password, encoded }))
      const malformed = [
        ...withPassword(pbkdf2.password, [
          '',
          '$',
          '$$$',
          pbkdf2.encoded.slice(0, -10),
          `pbkdf2_sha256$${iterations}$${salt}`,
          `pbkdf2_sha256$${iterations}$${salt}$`,
          `pbkdf2_sha256$${iterations}$$${hash}`,
          `pbkdf2_sha256$${iterations}$${salt}$${hash}$extra`,
          `pbkdf2_sha256$abc$${salt}$${hash}`,
          `pbkdf2_sha256$0$${salt}$${hash}`,
          `pbkdf2_sha256$-1$${salt}$${hash}`,
          `pbkdf2_sha256$2.5$${salt}$${hash}`,
          `pbkdf2_sha256$1e5$${salt}$${hash}`,
          `pbkdf2_sha256$99999999999$${salt}$${hash}`,
          `pbkdf2_sha256$${Number(iterations) + 1}$${salt}$${hash}`,
          `pbkdf2_sha256$${iterations}$${salt}$${hash.replace(/=+$/, '')}`,
          `pbkdf2_sha256$${iterations}$${salt}$not*base64!`,
          `pbkdf2_sha512$${iterations}$${salt}$${hash}`,
          `md5$${salt}$${hash}`,
          `unsalted_md5$${hash}`,
        ]),
        ...withPassword(argon2.password, [
          argon2.encoded.slice(0, -4),
          argon2.encoded.replace('$argon2id$', '$argon2d$'),
          argon2.encoded.replace('v=19', 'v=16'),
          `${argon2.encoded}==`,
          `argon2${argon2Phc.replace(/\$[^$]+$/, '$***')}`,
          argon2Phc,
          `bcrypt$${argon2Phc}`,
          `bcrypt_sha256$${argon2Phc}`,
        ]),
        ...withPassword(bcrypt.password, [
          bcrypt.encoded.slice(0, -1),
          bcrypt.encoded.replace('$2b$', '$2x$'),
          `bcrypt$${bcryptInner.replace(/.{8}$/, '********')}`,
          `bcrypt${bcryptInner}`,
          bcryptInner,
        ]),
      ]
      expect(await mismatches(malformed, false)).toEqual([])
    },
    SLOW,
  )

  test('deriving a PBKDF2 key does not block the event loop', async () => {
    const { password, encoded } = caseFor('pbkdf2_sha256', 0, '$870000$')
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    try {
      expect(await verifyDjangoPassword(password, encoded)).toBe(true)
    } finally {
      clearInterval(timer)
    }
    // With pbkdf2Sync the promise settles before any timer could fire.
    expect(ticks).toBeGreaterThan(0)
  })
})

describe('isDjangoHash', () => {
  test('recognises every fixture hash and every unusable password', () => {
    for (const { encoded } of [...fixtures.cases, ...fixtures.unusable]) {
      expect({ encoded, recognised: isDjangoHash(encoded) }).toEqual({
        encoded,
        recognised: true,
      })
    }
  })

  test('rejects strings that are not a supported Django hash', () => {
    const argon2 = caseFor('argon2').encoded
    const bcrypt = caseFor('bcrypt').encoded
    const notDjango = [
      '',
      'correct horse battery staple',
      'md5$salt$0123456789abcdef0123456789abcdef',
      'pbkdf2_sha256$abc$salt$aGFzaA==',
      'pbkdf2_sha256$260000$salt',
      argon2.slice('argon2'.length),
      bcrypt.slice('bcrypt$'.length),
    ]
    for (const encoded of notDjango) {
      expect({ encoded, recognised: isDjangoHash(encoded) }).toEqual({
        encoded,
        recognised: false,
      })
    }
  })
})
