import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import nodemailer from 'nodemailer'
import type { Logger } from '../logger'
import type { MailContent } from './templates/layout'

/** One message as the relay hands it over; `id` is the outbox row's, also used as its Message-ID. */
export type OutgoingMail = MailContent & { id: string; from: string; to: string }

/** Where messages go: an SMTP server, or a folder of .eml files on the embedded default. */
export type MailTransport = {
  kind: 'smtp' | 'file'
  /** Resolves once the server (or the disk) has taken the message; rejects with nodemailer's error otherwise. */
  send(mail: OutgoingMail): Promise<void>
  close(): void
}

const toMessage = (mail: OutgoingMail, domain: string) => ({
  from: mail.from,
  to: mail.to,
  subject: mail.subject,
  text: mail.text,
  html: mail.html,
  // Stable across retries, so a receiver that does see a copy twice (a crash after the server took it) can tell.
  messageId: `<${mail.id}@${domain}>`,
})

const domainOf = (from: string) => from.match(/@([^>\s]+)/)?.[1] ?? 'localhost'

/**
 * SMTP through nodemailer, one connection per message: transactional mail is a trickle, and a fresh
 * connection needs no pool to notice a server that restarted. The timeouts bound how long the relay's lock
 * is held by a server that accepts the connection and then says nothing.
 */
export function smtpTransport(url: string, from: string): MailTransport {
  const transporter = nodemailer.createTransport(url, {
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  } as object)
  const domain = domainOf(from)
  return {
    kind: 'smtp',
    send: async (mail) => void (await transporter.sendMail(toMessage(mail, domain))),
    close: () => transporter.close(),
  }
}

/** Writes each message as `<dir>/<id>.eml`; the same message written again replaces its file, never adds one. */
export function fileTransport(dir: string, from: string): MailTransport {
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' })
  const domain = domainOf(from)
  mkdirSync(dir, { recursive: true })
  return {
    kind: 'file',
    async send(mail) {
      const { message } = (await composer.sendMail(toMessage(mail, domain))) as unknown as { message: Buffer }
      const path = join(dir, `${mail.id}.eml`)
      // Renamed into place, so whoever watches the folder never reads half a message.
      writeFileSync(`${path}.tmp`, message)
      renameSync(`${path}.tmp`, path)
    },
    close() {},
  }
}

/** The configured transport: SMTP_URL, or .eml files under DATA_DIR/mail (and the log says where). */
export function createMailTransport(config: { dataDir: string; mail: { smtpUrl?: string; from: string } }, logger: Pick<Logger, 'info'>) {
  const { smtpUrl, from } = config.mail
  if (smtpUrl) {
    const { protocol, hostname, port } = new URL(smtpUrl)
    // The URL may hold the server's password: only where it points is logged.
    logger.info({ smtp: `${protocol}//${hostname}${port ? `:${port}` : ''}` }, 'mail is delivered by SMTP')
    return smtpTransport(smtpUrl, from)
  }
  const dir = resolve(config.dataDir, 'mail')
  logger.info({ dir }, `SMTP_URL is not set: mail is written as .eml files in ${dir}`)
  return fileTransport(dir, from)
}
