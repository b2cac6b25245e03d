/**
 * A PLC directory that lies on demand: a local HTTP server in front of the dev-env PLC that speaks
 * its API (GET /{did}, /{did}/log/audit, /{did}/data, POST /{did}, …) by forwarding every request,
 * and rewrites the answers the test asks it to — a document naming another key, a doctored log.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface PlcProxy {
  url: string
  /** GET /{did} serves the real document with its #atproto key replaced by `didKey` */
  lieAboutKey(did: string, didKey: string): void
  /** GET /{did}/log/audit serves `edit(realLog)` */
  editLog(did: string, edit: (log: any[]) => any[]): void
  /** serve `did` truthfully again */
  reset(did: string): void
  /** paths requested so far */
  hits: string[]
  close(): Promise<void>
}

export async function startPlcProxy(upstream: string): Promise<PlcProxy> {
  const docEdits = new Map<string, (doc: any) => any>()
  const logEdits = new Map<string, (log: any[]) => any[]>()
  const hits: string[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      try {
        const path = req.url ?? '/'
        hits.push(path)
        const up = await fetch(new URL(path, upstream), {
          method: req.method,
          headers: req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {},
          body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
        })
        let body = await up.text()
        const [, first, ...rest] = path.split('?')[0]!.split('/')
        const did = decodeURIComponent(first ?? '')
        if (req.method === 'GET' && up.ok) {
          const edit = rest.length === 0 ? docEdits.get(did) : rest.join('/') === 'log/audit' ? logEdits.get(did) : undefined
          if (edit) body = JSON.stringify(edit(JSON.parse(body)))
        }
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' })
        res.end(body)
      } catch (err) {
        res.writeHead(502, { 'content-type': 'text/plain' })
        res.end(String(err))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    lieAboutKey(did, didKey) {
      docEdits.set(did, (doc) => ({
        ...doc,
        verificationMethod: (doc.verificationMethod ?? []).map((vm: any) =>
          String(vm.id).endsWith('#atproto')
            ? { id: vm.id, type: 'Multikey', controller: did, publicKeyMultibase: didKey.slice('did:key:'.length) }
            : vm,
        ),
      }))
    },
    editLog(did, edit) {
      logEdits.set(did, edit)
    },
    reset(did) {
      docEdits.delete(did)
      logEdits.delete(did)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
