import { escapeHtml, htmlPage, oneLine, type Brand, type MailContent } from './layout'

export type RecoveryCodesRegeneratedPayload = { full_name: string }

/** Tells the account's address that new recovery codes were made (the old ones stopped working). */
export function recoveryCodesRegenerated(brand: Brand, { full_name }: RecoveryCodesRegeneratedPayload): MailContent {
  const what = `New recovery codes were made for your ${brand.productName} account; the old ones no longer work.`
  return {
    subject: oneLine(`New recovery codes for your ${brand.productName} account`),
    text: `Hello ${full_name},

${what}

If you did not do this, reset your password at once:
${brand.resetUrl}
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      escapeHtml(what),
      `If you did not do this, <a href="${escapeHtml(brand.resetUrl)}">reset your password</a> at once.`,
    ]),
  }
}
