/**
 * A flaky relay in front of a real firehose: each client connection gets its own upstream
 * subscription (same ?cursor=) and the upstream's frames, untouched — until the proxy decides to
 * fail: close the connection every N frames (alternating a clean close and an abrupt one), refuse
 * connections for a while (nothing listening), or go silent once without closing (a stall).
 */
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'

export interface RelayProxyOptions {
  /** upstream subscribeRepos URL, e.g. the dev-env PDS's */
  upstream: string
  /** close every connection after this many frames (0 = never) */
  dropEvery: number
  /** after this many drops, refuse connections for `refuseMs` */
  refuseAfterDrops?: number
  refuseMs?: number
  /** after this many drops, the next connection goes silent (open, no frames) after `dropEvery / 2` frames */
  stallAfterDrops?: number
  /** at most one frame per this many ms to each client (a slow relay: a replay that takes a while) */
  frameDelayMs?: number
}

export interface RelayProxy {
  url: string
  /** what happened, in order: `drop-clean`, `drop-abrupt`, `refuse-start`, `refuse-end`, `stall` */
  events: string[]
  /** cursors asked for, one per accepted connection */
  cursors: (number | undefined)[]
  /** connection attempts refused while nothing listened cannot be seen; these are accepted ones */
  connections(): number
  /** the most bytes ever waiting in the proxy for a client to read them (the client's backpressure) */
  maxBuffered(): number
  close(): Promise<void>
}

export async function startRelayProxy(opts: RelayProxyOptions): Promise<RelayProxy> {
  const events: string[] = []
  const cursors: (number | undefined)[] = []
  const sockets = new Set<Socket>()
  const server = http.createServer((_, res) => res.writeHead(404).end())
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const wss = new WebSocketServer({ server })
  let drops = 0
  let maxBuffered = 0
  let stalled = false
  let closing = false

  wss.on('connection', (client, req) => {
    const cursor = new URL(req.url ?? '/', 'http://x').searchParams.get('cursor')
    cursors.push(cursor === null ? undefined : Number(cursor))
    const up = new WebSocket(cursor === null ? opts.upstream : `${opts.upstream}?cursor=${cursor}`)
    const stallHere = !stalled && opts.stallAfterDrops !== undefined && drops >= opts.stallAfterDrops
    let sent = 0
    let done = false
    // frames waiting for their turn when the proxy paces them (frameDelayMs)
    const paced: Buffer[] = []
    let pump: NodeJS.Timeout | undefined
    const finish = () => {
      done = true
      if (pump) clearInterval(pump)
      up.terminate()
    }
    up.on('message', (data: Buffer) => {
      if (!opts.frameDelayMs) return forward(data)
      paced.push(data)
      pump ??= setInterval(() => {
        const next = paced.shift()
        if (next) forward(next)
        if (!paced.length || done) {
          clearInterval(pump)
          pump = undefined
        }
      }, opts.frameDelayMs)
    })
    const forward = (data: Buffer) => {
      if (done || client.readyState !== WebSocket.OPEN) return
      if (stallHere && sent >= Math.floor(opts.dropEvery / 2)) {
        // silent from here on, connection left open: only the client's watchdog can end it
        if (!stalled) events.push('stall')
        stalled = true
        return
      }
      client.send(data)
      if (client.bufferedAmount > maxBuffered) maxBuffered = client.bufferedAmount
      sent++
      if (opts.dropEvery > 0 && sent >= opts.dropEvery) {
        drops++
        if (drops % 2 === 1) {
          events.push('drop-clean')
          client.close(1000, 'bye')
        } else {
          events.push('drop-abrupt')
          client.terminate()
        }
        finish()
        if (opts.refuseAfterDrops !== undefined && drops === opts.refuseAfterDrops) void refuseFor(opts.refuseMs ?? 3000)
      }
    }
    up.on('error', () => client.terminate())
    up.on('close', () => {
      if (!done) client.close(1011, 'upstream closed')
    })
    client.on('close', finish)
    client.on('error', finish)
  })

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port

  async function refuseFor(ms: number) {
    events.push('refuse-start')
    await new Promise<void>((r) => {
      server.close(() => r())
      for (const s of sockets) s.destroy()
    })
    await new Promise((r) => setTimeout(r, ms))
    if (closing) return
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    events.push('refuse-end')
  }

  return {
    url: `ws://127.0.0.1:${port}`,
    events,
    cursors,
    connections: () => cursors.length,
    maxBuffered: () => maxBuffered,
    async close() {
      closing = true
      for (const c of wss.clients) c.terminate()
      for (const s of sockets) s.destroy()
      wss.close()
      if (server.listening) await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
