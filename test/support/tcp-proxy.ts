import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'

/** A loopback TCP proxy whose link the test can cut, stall and restore. */
export type TcpProxy = {
  port: number
  /** Destroys every proxied connection and refuses new ones until restore(). */
  cut(): void
  /** Keeps connections open but holds every byte back, like a hung broker, until restore(). */
  stall(): void
  /** Accepts connections again and delivers any bytes held by stall(). */
  restore(): void
  /** Destroys every connection and stops listening. */
  stop(): Promise<void>
}

/** Starts a proxy on 127.0.0.1 (random port) forwarding to 127.0.0.1:targetPort. */
export async function startTcpProxy({ targetPort }: { targetPort: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const held: { to: Socket; chunk: Buffer }[] = []
  let refusing = false
  let stalled = false

  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  }
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (stalled) held.push({ to, chunk })
      else to.write(chunk)
    })
  }

  const server = createServer((client) => {
    track(client)
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = connect({ host: '127.0.0.1', port: targetPort })
    track(upstream)
    // Either side failing tears down the pair, like a real network drop.
    const teardown = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', teardown).on('close', teardown)
    upstream.on('error', teardown).on('close', teardown)
    forward(client, upstream)
    forward(upstream, client)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no TCP address')

  const destroyAll = () => {
    held.length = 0
    for (const socket of sockets) socket.destroy()
  }

  return {
    port: address.port,
    cut() {
      refusing = true
      destroyAll()
    },
    stall() {
      stalled = true
    },
    restore() {
      refusing = false
      stalled = false
      for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk)
    },
    stop() {
      refusing = true
      destroyAll()
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
    },
  }
}
