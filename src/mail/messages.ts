import type { Transaction } from '../db'
import { mailOutbox } from './table'
import { emailChanged, type EmailChangedPayload } from './templates/email-changed'
import { emailVerification, type EmailVerificationPayload } from './templates/email-verification'
import type { Brand, MailContent } from './templates/layout'
import { mfaDisabled, type MfaDisabledPayload } from './templates/mfa-disabled'
import { mfaEnabled, type MfaEnabledPayload } from './templates/mfa-enabled'
import { recoveryCodesRegenerated, type RecoveryCodesRegeneratedPayload } from './templates/recovery-codes-regenerated'
import { passwordChanged, type PasswordChangedPayload } from './templates/password-changed'
import { passwordReset, type PasswordResetPayload } from './templates/password-reset'

/** Every kind of message, with what its template needs. */
export type MailPayloads = {
  password_reset: PasswordResetPayload
  email_verification: EmailVerificationPayload
  email_changed: EmailChangedPayload
  password_changed: PasswordChangedPayload
  mfa_enabled: MfaEnabledPayload
  mfa_disabled: MfaDisabledPayload
  recovery_codes_regenerated: RecoveryCodesRegeneratedPayload
}
export type MailKind = keyof MailPayloads

const templates: { [K in MailKind]: (brand: Brand, payload: MailPayloads[K]) => MailContent } = {
  password_reset: passwordReset,
  email_verification: emailVerification,
  email_changed: emailChanged,
  password_changed: passwordChanged,
  mfa_enabled: mfaEnabled,
  mfa_disabled: mfaDisabled,
  recovery_codes_regenerated: recoveryCodesRegenerated,
}

/** A message to queue: rendered only when the relay delivers it, so the stored row holds data, not markup. */
export type Mail<K extends MailKind = MailKind> = { kind: K; to: string; payload: MailPayloads[K] }

export const isMailKind = (kind: string): kind is MailKind => Object.hasOwn(templates, kind)

/** Renders a stored message; throws on a kind this version does not know (the relay then gives up on it). */
export function renderMail(brand: Brand, kind: string, payload: unknown): MailContent {
  if (!isMailKind(kind)) throw new Error(`unknown mail kind ${JSON.stringify(kind)}`)
  return (templates[kind] as (brand: Brand, payload: unknown) => MailContent)(brand, payload)
}

/** Queues a message in the caller's transaction: it is delivered only if that transaction commits. */
export async function queueMail(tx: Transaction, mail: Mail, at: Date) {
  await tx.insert(mailOutbox).values({
    id: Bun.randomUUIDv7(),
    kind: mail.kind,
    toAddress: mail.to,
    payload: mail.payload,
    createdAt: at,
    nextAttemptAt: at,
  })
}
