import { escapeHtml, htmlPage, oneLine, type Brand, type MailContent } from './layout'

export type MfaEnabledPayload = { full_name: string; method: 'totp' | 'passkey' }

export const methodName = (method: MfaEnabledPayload['method']) => (method === 'totp' ? 'an authenticator app' : 'a passkey')

/** Tells the account's address that a second factor (an authenticator app or a passkey) was added. */
export function mfaEnabled(brand: Brand, { full_name, method }: MfaEnabledPayload): MailContent {
  const what = `${methodName(method)} was added to your ${brand.productName} account as a way to sign in.`
  return {
    subject: oneLine(`A sign-in method was added to your ${brand.productName} account`),
    text: `Hello ${full_name},

${capitalize(what)}

If you did not do this, reset your password at once and remove it:
${brand.resetUrl}
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      escapeHtml(capitalize(what)),
      `If you did not do this, <a href="${escapeHtml(brand.resetUrl)}">reset your password</a> at once and remove it.`,
    ]),
  }
}

export const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)
