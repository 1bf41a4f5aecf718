import { escapeHtml, htmlPage, oneLine, type Brand, type MailContent } from './layout'

export type PasswordChangedPayload = { full_name: string; reset: boolean }

/** Tells the account's address that its password was changed or reset. */
export function passwordChanged(brand: Brand, { full_name, reset }: PasswordChangedPayload): MailContent {
  const what = reset ? 'reset with a link or code sent to this address' : 'changed'
  const sessions = reset ? 'Every session was signed out.' : 'Your other sessions were signed out.'
  return {
    subject: oneLine(`Your ${brand.productName} password was ${reset ? 'reset' : 'changed'}`),
    text: `Hello ${full_name},

The password of your ${brand.productName} account was ${what}. ${sessions}

If you did not do this, reset your password at once:
${brand.resetUrl}
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      `The password of your ${escapeHtml(brand.productName)} account was ${what}. ${sessions}`,
      `If you did not do this, <a href="${escapeHtml(brand.resetUrl)}">reset your password</a> at once.`,
    ]),
  }
}
