import { escapeHtml, htmlButton, htmlCode, htmlPage, oneLine, pageLink, type Brand, type MailContent } from './layout'

export type EmailVerificationPayload = { full_name: string; token: string; code: string; hours: number }

/** The link and code that prove the reader owns the address. */
export function emailVerification(brand: Brand, { full_name, token, code, hours }: EmailVerificationPayload): MailContent {
  const link = pageLink(brand.verifyUrl, token)
  return {
    subject: oneLine(`Confirm your email address for ${brand.productName}`),
    text: `Hello ${full_name},

Please confirm that this address belongs to your ${brand.productName} account by opening this link:

${link}

Or enter this code: ${code}

The link and the code work once, for ${hours} hours. If you did not create an account, ignore this message.
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      `Please confirm that this address belongs to your ${escapeHtml(brand.productName)} account.`,
      htmlButton(link, 'Confirm my address'),
      `Or enter this code: ${htmlCode(code)}`,
      `The link and the code work once, for ${hours} hours. If you did not create an account, ignore this message.`,
    ]),
  }
}
