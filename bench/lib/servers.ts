/**
 * The bench's local network on one HTTP port, serving the cached stream like the real services:
 *
 *   /xrpc/com.atproto.sync.subscribeRepos   (WebSocket) the frames from `?cursor=` on, like a relay
 *   /xrpc/com.atproto.sync.getRepo          repo CARs as of stream start, like a PDS
 *   /xrpc/com.atproto.identity.resolveHandle handle → DID, like a PDS
 *   /<did>, /<did>/log/audit, /<did>/log, /<did>/log/last, /<did>/data
 *                                           DID documents and signed operation logs, like plc.directory
 *
 * Frames are read from disk as they are sent, and sending waits while the client's socket is full,
 * so a slow consumer slows the server instead of filling its memory (as a relay's outbox would).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { openSync, readSync, closeSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { encode } from '@atcute/cbor'
import { create as createCid, toString as cidToString } from '@atcute/cid'
import { opToData } from '@did-plc/lib'
import { openCapture } from '../../src/firehose/capture.ts'

/** Every frame of a capture file, in order (views into one buffer). */
async function loadFrames(path: string): Promise<Uint8Array[]> {
  const reader = await openCapture(path)
  await reader.close()
  const file = await readFile(path)
  const out: Uint8Array[] = []
  for (let at = reader.dataOffset; at < file.byteLength; ) {
    const len = file.readUInt32BE(at)
    out.push(file.subarray(at + 4, at + 4 + len))
    at += 4 + len
  }
  return out
}
import type { CachedStream } from '../stream/cache.ts'
import { STREAM_T0_MS } from '../stream/plan.ts'

export interface BenchServers {
  /** http://127.0.0.1:port — PLC, PDS and relay all in one */
  url: string
  /** ws://127.0.0.1:port */
  wsUrl: string
  /** frames sent over all connections */
  framesSent(): number
  close(): Promise<void>
}

const SEND_BATCH = 64
const HIGH_WATER = 4 * 1024 * 1024

export async function startBenchServers(stream: CachedStream): Promise<BenchServers> {
  const byDid = new Map(stream.accounts.map((a) => [a.did, a]))
  const byHandle = new Map(stream.accounts.map((a) => [a.handle, a.did]))
  const opCids = new Map<string, string>()
  for (const a of stream.accounts) opCids.set(a.did, cidToString(await createCid(0x71, encode(a.plcOp))))
  const createdAt = new Date(STREAM_T0_MS - 365 * 86_400_000).toISOString()
  let base = ''
  let sent = 0

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', base)
    if (url.pathname === '/xrpc/com.atproto.sync.getRepo') {
      const a = byDid.get(url.searchParams.get('did') ?? '')
      if (!a?.repo) return json(res, 400, { error: 'RepoNotFound', message: 'no repo at stream start' })
      const buf = Buffer.allocUnsafe(a.repo.length)
      const fd = openSync(join(stream.dir, a.repo.file), 'r')
      try {
        readSync(fd, buf, 0, a.repo.length, a.repo.offset)
      } finally {
        closeSync(fd)
      }
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car', 'content-length': buf.byteLength })
      return res.end(buf)
    }
    if (url.pathname === '/xrpc/com.atproto.identity.resolveHandle') {
      const did = byHandle.get(url.searchParams.get('handle') ?? '')
      return did ? json(res, 200, { did }) : json(res, 400, { error: 'HandleNotFound', message: 'unknown handle' })
    }
    const [didPart, ...rest] = url.pathname.slice(1).split('/')
    const did = decodeURIComponent(didPart ?? '')
    const a = byDid.get(did)
    if (!a) return json(res, 404, { message: `DID not registered: ${did}` })
    switch (rest.join('/')) {
      case '':
        return json(res, 200, a.doc)
      case 'log/audit':
        return json(res, 200, [{ did, operation: a.plcOp, cid: opCids.get(did), nullified: false, createdAt }])
      case 'log':
        return json(res, 200, [a.plcOp])
      case 'log/last':
        return json(res, 200, a.plcOp)
      case 'data':
        return json(res, 200, opToData(did, a.plcOp))
      default:
        return json(res, 404, { message: 'not found' })
    }
  }

  const server = createServer(onRequest)
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname !== '/xrpc/com.atproto.sync.subscribeRepos') return socket.destroy()
    wss.handleUpgrade(req, socket, head, (ws) => void serveFrames(ws, socket, url.searchParams.get('cursor')))
  })

  // the whole recording in memory, indexed, so sending costs no disk read or copy per frame and the
  // server can outrun the fastest consumer (a relay's outbox is in memory too)
  const frames = await loadFrames(stream.capturePath)

  /** Sends every frame after the cursor (seq = index + 1 in a bench stream), then stays open like a relay. */
  async function serveFrames(ws: WebSocket, socket: Duplex, cursorParam: string | null): Promise<void> {
    const cursor = cursorParam ? Number(cursorParam) : 0
    let open = true
    ws.on('close', () => (open = false))
    ws.on('error', () => (open = false))
    for (let i = Math.max(0, cursor); i < frames.length && open; ) {
      if (ws.bufferedAmount > HIGH_WATER) {
        // wait until the socket takes this frame: the client is behind
        await new Promise<void>((resolve) => ws.send(frames[i]!, () => resolve()))
        sent++
        i++
        continue
      }
      // a batch of frames leaves in one write (as a relay's buffered writer does): one send per
      // syscall made this server, not the consumer, the limit of the pass-through figure
      socket.cork()
      for (const end = Math.min(frames.length, i + SEND_BATCH); i < end; i++, sent++) ws.send(frames[i]!)
      socket.uncork()
    }
  }

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
  return {
    url: base,
    wsUrl: `ws://127.0.0.1:${port}`,
    framesSent: () => sent,
    async close() {
      for (const c of wss.clients) c.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
