import { escapeHtml, htmlButton, htmlCode, htmlPage, oneLine, pageLink, type Brand, type MailContent } from './layout'

export type PasswordResetPayload = { full_name: string; token: string; code: string; minutes: number }

/** The link and code that reset a forgotten password. */
export function passwordReset(brand: Brand, { full_name, token, code, minutes }: PasswordResetPayload): MailContent {
  const link = pageLink(brand.resetUrl, token)
  return {
    subject: oneLine(`Reset your ${brand.productName} password`),
    text: `Hello ${full_name},

Someone (we hope you) asked to reset the password of your ${brand.productName} account.
Open this link to choose a new one:

${link}

Or enter this code: ${code}

The link and the code work once, for ${minutes} minutes. If you did not ask for this,
ignore this message: your password stays as it is.
`,
    html: htmlPage(brand, [
      `Hello ${escapeHtml(full_name)},`,
      `Someone (we hope you) asked to reset the password of your ${escapeHtml(brand.productName)} account.`,
      htmlButton(link, 'Choose a new password'),
      `Or enter this code: ${htmlCode(code)}`,
      `The link and the code work once, for ${minutes} minutes. If you did not ask for this, ignore this message: your password stays as it is.`,
    ]),
  }
}
