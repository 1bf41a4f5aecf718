/** The recovery feature's expected failures, by stable snake_case code; src/errors.ts maps each to its answer. */
export const RecoveryErrors = {
  /** A link token that is wrong, used, expired or superseded (all alike: which one is not revealed). */
  invalid_token: 'Invalid or expired token.',
  /** A code that is wrong, used up, expired or superseded, or an email with no pending code. */
  invalid_code: 'Invalid or expired code.',
  /** Neither a token nor an email with a code. */
  token_required: 'This field is required.',
} as const

export type RecoveryErrorCode = keyof typeof RecoveryErrors

export class RecoveryError extends Error {
  constructor(readonly code: RecoveryErrorCode) {
    super(RecoveryErrors[code])
  }
}
