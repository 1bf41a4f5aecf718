import { escapeHtml, htmlPage, oneLine, type Brand, type MailContent } from './layout'
import { capitalize, methodName, type MfaEnabledPayload } from './mfa-enabled'

export type MfaDisabledPayload = MfaEnabledPayload & { factors_left: number }

/** Tells the account's address that a second factor was removed, and when it was the last one, that the password alone now signs in. */
export function mfaDisabled(brand: Brand, { full_name, method, factors_left }: MfaDisabledPayload): MailContent {
  const what = `${methodName(method)} was removed from your ${brand.productName} account.`
  const left = factors_left === 0 ? 'Your password alone now signs in to it.' : ''
  return {
    subject: oneLine(`A sign-in method was removed from your ${brand.productName} account`),
    text: `Hello ${full_name},

${capitalize(what)} ${left}

If you did not do this, reset your password at once:
${brand.resetUrl}
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      `${escapeHtml(capitalize(what))} ${left}`,
      `If you did not do this, <a href="${escapeHtml(brand.resetUrl)}">reset your password</a> at once.`,
    ]),
  }
}
