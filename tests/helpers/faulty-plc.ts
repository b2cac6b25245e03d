/**
 * A PLC directory that fails on demand: an HTTP proxy in front of the dev-env PLC that forwards
 * requests untouched, or answers them with a fault — 503, a hang (the client times out), a reset
 * connection — for every DID or only some; `refuse` stops listening altogether (connection refused)
 * and `pass` listens again on the same port. The real PLC stays the source of every document served.
 */
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type PlcFault = 'pass' | '503' | 'hang' | 'reset' | 'refuse'

export interface FaultyPlc {
  url: string
  /** Sets the fault for every request, or only for requests about `dids` (others pass). */
  setFault(fault: PlcFault, dids?: string[]): Promise<void>
  /** Every request seen: the DID asked about and what it got. */
  requests: { did: string; fault: PlcFault; at: number }[]
  /** Requests answered with a fault (refused connections are not seen, so not counted). */
  faulted(): number
  close(): Promise<void>
}

export async function startFaultyPlc(upstream: string): Promise<FaultyPlc> {
  let fault: PlcFault = 'pass'
  let only: Set<string> | undefined
  const requests: FaultyPlc['requests'] = []
  const sockets = new Set<Socket>()
  const hung = new Set<http.ServerResponse>()

  const server = http.createServer(async (req, res) => {
    const did = decodeURIComponent((req.url ?? '/').slice(1).split('/')[0] ?? '')
    const f = only && !only.has(did) ? 'pass' : fault
    requests.push({ did, fault: f === 'refuse' ? 'pass' : f, at: Date.now() })
    if (f === '503') {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"PLC directory unavailable"}')
      return
    }
    if (f === 'hang') {
      hung.add(res)
      res.on('close', () => hung.delete(res))
      return
    }
    if (f === 'reset') {
      req.socket.destroy()
      return
    }
    try {
      const up = await fetch(new URL(req.url ?? '/', upstream), { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } })
      const body = Buffer.from(await up.arrayBuffer())
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' }).end(body)
    } catch (err) {
      res.writeHead(502).end(String(err))
    }
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port

  const dropConnections = () => {
    for (const r of hung) r.destroy()
    for (const s of sockets) s.destroy()
  }

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faulted: () => requests.filter((r) => r.fault !== 'pass').length,
    async setFault(next, dids) {
      const wasRefusing = fault === 'refuse'
      fault = next
      only = dids ? new Set(dids) : undefined
      if (next === 'refuse' && !wasRefusing) {
        if (dids) throw new Error('refuse applies to every DID (nothing is listening)')
        const closed = new Promise<void>((r) => server.close(() => r()))
        dropConnections() // keep-alive connections would otherwise still be served
        await closed
      } else if (next !== 'refuse' && wasRefusing) {
        server.listen(port, '127.0.0.1')
        await once(server, 'listening')
      }
      // a fault change also ends the requests left hanging by the previous one
      if (next !== 'hang') for (const r of hung) r.destroy()
    },
    async close() {
      dropConnections()
      if (server.listening) await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
