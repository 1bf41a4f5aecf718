import { FormatRegistry, Kind, Type, TypeRegistry } from '@sinclair/typebox'
import { fullFormats } from 'elysia/type-system/format'

const FORMATS = ['email', 'uri', 'date-time'] as const
// Stricter than Elysia's, which also takes a `urn:uuid:` prefix that a Postgres uuid column refuses.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A UUID as a Postgres uuid column takes it: the one check the schemas, tokens and directory share. */
export const isUuid = (value: unknown): boolean => typeof value === 'string' && UUID.test(value)

/**
 * Puts Elysia's own string formats back. @elysiajs/openapi replaces them, when imported, with checks
 * that build a Zod or Valibot schema on every call: a profile showed that costing a sixth of the CPU of
 * GET /me. Elysia's are precompiled regular expressions and functions.
 */
export function restoreStringFormats() {
  for (const name of FORMATS) {
    const format = fullFormats[name] as RegExp | ((value: string) => boolean)
    FormatRegistry.Set(name, format instanceof RegExp ? (value) => format.test(value) : format)
  }
  FormatRegistry.Set('uuid', isUuid)
}

/** The number of characters (Unicode code points) in a string, as Python and Postgres count them. */
export const characterCount = (value: string) => {
  let count = value.length
  // A surrogate pair is two UTF-16 units but one character.
  for (let i = 0; i < value.length; i++) if ((value.charCodeAt(i) & 0xfc00) === 0xd800) count--
  return count
}

// TypeBox's minLength/maxLength count UTF-16 units ("😀😀😀😀" would pass as 8 characters). This kind
// checks the same keywords in characters, as JSON Schema defines them, so the OpenAPI spec still says
// `type: string, minLength, maxLength` and means what the service does.
TypeRegistry.Set<TextOptions>(
  'Text',
  (schema, value) =>
    typeof value === 'string' &&
    (schema.minLength === undefined || characterCount(value) >= schema.minLength) &&
    (schema.maxLength === undefined || characterCount(value) <= schema.maxLength),
)

type TextOptions = { minLength?: number; maxLength?: number; description?: string; examples?: string[] }

/** A string whose length limits count characters: every string field with a length rule uses this. */
export const text = (options: TextOptions) => Type.Unsafe<string>({ [Kind]: 'Text', type: 'string', ...options })

const emailFormat = fullFormats.email as RegExp | ((value: string) => boolean)

/** Whether a string is an email address as the API's `email` format accepts it (for addresses from elsewhere). */
export const isEmail = (value: string) => (emailFormat instanceof RegExp ? emailFormat.test(value) : emailFormat(value))
