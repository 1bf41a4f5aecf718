import { FieldErrors } from '../errors'

/** The recovery feature's expected failures, by stable snake_case code. */
export const RecoveryErrors = {
  /** A link token that is wrong, used, expired or superseded (all alike: which one is not revealed). */
  invalid_token: 'Invalid or expired token.',
  /** A code that is wrong, used up, expired or superseded, or an email with no pending code. */
  invalid_code: 'Invalid or expired code.',
  /** Neither a token nor an email with a code. */
  token_required: 'This field is required.',
} as const

export type RecoveryErrorCode = keyof typeof RecoveryErrors

// Every recovery failure is a DRF field error, so the frontend shows it beside the field it names.
const FIELDS: Record<RecoveryErrorCode, string> = { invalid_token: 'token', invalid_code: 'code', token_required: 'token' }

/** A recovery failure, rendered as a field error on the field its code names. */
export class RecoveryError extends FieldErrors {
  constructor(readonly code: RecoveryErrorCode) {
    super({ [FIELDS[code]]: [RecoveryErrors[code]] })
  }
}
