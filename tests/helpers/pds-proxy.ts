/**
 * A repo's PDS as the mirror sees it, with faults on demand: an HTTP forwarder in front of the real
 * dev-env PDS, named as the DID's PDS endpoint in its PLC document (`pointPdsAt`). It passes every
 * request through, except `com.atproto.sync.getRepo`, which it can fail (the PDS is down) or hold
 * (fetched from the PDS at once, answered only on `release()`: a slow download).
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Devnet } from './devnet.ts'

export type ProxyMode = 'pass' | 'fail' | 'hold'

export interface PdsProxy {
  url: string
  mode: ProxyMode
  /** every getRepo request, in arrival order (ms since epoch) */
  getRepoRequests: { did: string; at: number }[]
  /** getRepo answers fetched from the PDS and waiting for release() */
  held(): number
  release(): void
  close(): Promise<void>
}

export async function startPdsProxy(target: string): Promise<PdsProxy> {
  let waiting: (() => void)[] = []
  const proxy: PdsProxy = {
    url: '',
    mode: 'pass',
    getRepoRequests: [],
    held: () => waiting.length,
    release() {
      const ws = waiting
      waiting = []
      for (const w of ws) w()
    },
    close: async () => {
      proxy.release()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', target)
    const isGetRepo = url.pathname === '/xrpc/com.atproto.sync.getRepo'
    if (isGetRepo) proxy.getRepoRequests.push({ did: url.searchParams.get('did') ?? '', at: Date.now() })
    if (isGetRepo && proxy.mode === 'fail') {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'UpstreamFailure', message: 'PDS unavailable' }))
      return
    }
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))) as Record<string, string>
    const upstream = await fetch(url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined })
    const body = Buffer.from(await upstream.arrayBuffer())
    if (isGetRepo && proxy.mode === 'hold') await new Promise<void>((r) => waiting.push(r))
    const out: Record<string, string> = {}
    upstream.headers.forEach((v, k) => {
      if (!['content-encoding', 'content-length', 'transfer-encoding', 'connection'].includes(k)) out[k] = v
    })
    res.writeHead(upstream.status, out).end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return proxy
}

/** Names `endpoint` as the DID's PDS in its PLC document (signed with the PDS's PLC rotation key). */
export async function pointPdsAt(net: Devnet, did: string, endpoint: string): Promise<void> {
  await net.network.plc.getClient().updatePds(did, net.network.pds.ctx.plcRotationKey, endpoint)
}

/** Polls `check` until it holds (or throws after `timeoutMs`). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
