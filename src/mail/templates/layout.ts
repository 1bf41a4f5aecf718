/** What every template may use besides its own payload: the product's name and the pages links open. */
export type Brand = { productName: string; resetUrl: string; verifyUrl: string }

/** A rendered message. */
export type MailContent = { subject: string; text: string; html: string }

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text made safe for an HTML element or a quoted attribute: every value a template puts in HTML goes through it. */
export const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]!)

/** A frontend page with `?token=` appended (the page POSTs it: a GET, such as a mail scanner's, spends nothing). */
export function pageLink(base: string, token: string) {
  const url = new URL(base)
  url.searchParams.set('token', token)
  return url.toString()
}

// A subject is one header line: a name with a line break in it must not start another header.
export const oneLine = (value: string) => value.replace(/[\r\n\t]+/g, ' ').trim()

/** The HTML around a message's paragraphs, which are already escaped HTML. */
export function htmlPage(brand: Brand, paragraphs: string[]) {
  const body = paragraphs.map((paragraph) => `<p style="margin:0 0 16px">${paragraph}</p>`).join('\n')
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(brand.productName)}</title></head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#222;max-width:560px;margin:24px auto;padding:0 16px">
${body}
<p style="margin:32px 0 0;color:#777;font-size:13px">${escapeHtml(brand.productName)}</p>
</body></html>
`
}

/** A link as an HTML button, the URL escaped as an attribute and as text. */
export const htmlButton = (href: string, label: string) =>
  `<a href="${escapeHtml(href)}" style="display:inline-block;padding:10px 18px;background:#2457d6;color:#fff;border-radius:6px;text-decoration:none">${escapeHtml(label)}</a>`

/** A one-time code, set apart so it can be read and typed. */
export const htmlCode = (code: string) =>
  `<span style="font-size:24px;letter-spacing:4px;font-family:ui-monospace,monospace">${escapeHtml(code)}</span>`
