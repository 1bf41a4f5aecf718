import { escapeHtml, htmlPage, oneLine, type Brand, type MailContent } from './layout'

export type EmailChangedPayload = { full_name: string; new_email: string }

/** Tells the old address that the account now uses another one. */
export function emailChanged(brand: Brand, { full_name, new_email }: EmailChangedPayload): MailContent {
  return {
    subject: oneLine(`Your ${brand.productName} email address was changed`),
    text: `Hello ${full_name},

The email address of your ${brand.productName} account was changed to ${new_email}.
This address will no longer receive messages about the account.

If you did not make this change, reset your password and contact us at once.
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      `The email address of your ${escapeHtml(brand.productName)} account was changed to <strong>${escapeHtml(new_email)}</strong>. This address will no longer receive messages about the account.`,
      'If you did not make this change, reset your password and contact us at once.',
    ]),
  }
}
