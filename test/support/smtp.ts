import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'

export type Received = { mail: ParsedMail; to: string; acceptedAt: number }

/**
 * A real SMTP server on a free port (smtp-server, which waits a fixed 100 ms before its greeting to catch
 * clients that talk too soon, as real servers do), keeping what it accepts (parsed by mailparser). `stop()` and `start()`
 * take it away and bring it back on the same port; `refuse` makes it reject recipients with an SMTP reply.
 */
export async function startSmtpServer() {
  const received: Received[] = []
  const refuse = new Map<string, number>()
  let server: SMTPServer | undefined

  async function listen(port: number) {
    const instance = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      // Its default reverse DNS lookup of each client would be most of the measured delivery time.
      disableReverseLookup: true,
      logger: false,
      closeTimeout: 50,
      onRcptTo(address, _session, callback) {
        const code = refuse.get(address.address.toLowerCase())
        if (code) return callback(Object.assign(new Error(`refused ${address.address}`), { responseCode: code }))
        callback()
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = []
        stream.on('data', (chunk: Buffer) => chunks.push(chunk))
        stream.on('end', () => {
          // Accepted first, parsed after: the parsing is not part of the delivery time a test measures.
          const acceptedAt = performance.now()
          const recipients = session.envelope.rcptTo.map((rcpt) => rcpt.address.toLowerCase())
          callback()
          void simpleParser(Buffer.concat(chunks)).then((mail) => {
            for (const to of recipients) received.push({ mail, to, acceptedAt })
          })
        })
      },
    })
    await new Promise<void>((resolve, reject) => {
      instance.server.once('error', reject)
      instance.listen(port, '127.0.0.1', () => resolve())
    })
    server = instance
    return (instance.server.address() as AddressInfo).port
  }

  const port = await listen(0)
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    refuse,
    /** Messages that went to the address. */
    to: (address: string) => received.filter((message) => message.to === address.toLowerCase()),
    async stop() {
      const closing = server
      server = undefined
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()))
    },
    start: () => listen(port),
  }
}

export type TestSmtp = Awaited<ReturnType<typeof startSmtpServer>>

/** The link's token and the code in a message (from its plain text part). */
export function secretsOf(mail: ParsedMail) {
  const text = mail.text ?? ''
  const token = text.match(/[?&]token=([\w-]+)/)?.[1]
  const code = text.match(/code: (\d{6})/)?.[1]
  if (!token || !code) throw new Error(`no token or code in: ${text}`)
  return { token, code, link: text.match(/https?:\/\/\S+token=[\w-]+/)?.[0] }
}
