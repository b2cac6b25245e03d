/**
 * Commits signed by a key the test holds, for content no honest PDS writes: record blocks that are
 * not DAG-CBOR, not maps, or nested far too deep. The signature, block hashes and MST are all genuine
 * (built with @atproto/repo), so only the record content is hostile. The DID is a did:web served by
 * a local HTTP server, so the mirror resolves the key the usual way.
 */
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Secp256k1Keypair } from '@atproto/crypto'
import { TID } from '@atproto/common-web'
import { BlockMap, MemoryBlockstore, MST, blocksToCarFile, signCommit } from '@atproto/repo'
import { parseCid } from '@atproto/lex-data'
import { create as createCid, toString as cidToString } from '@atcute/cid'
import type { CommitEvent } from '../../src/firehose/events.ts'

export interface ForgedAuthor {
  did: string
  signingKey: string
  /** A genesis commit creating one record per entry, with exactly these record bytes. */
  genesis(seq: number, records: { path: string; bytes: Uint8Array }[]): Promise<CommitEvent>
  close(): Promise<void>
}

export async function startForgedAuthor(): Promise<ForgedAuthor> {
  const keypair = await Secp256k1Keypair.create({ exportable: true })
  const server = http.createServer((req, res) => {
    if (req.url !== '/.well-known/did.json') return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
  })
  server.listen(0, 'localhost')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const did = `did:web:localhost%3A${port}`
  const multibase = keypair.did().slice('did:key:'.length)
  const doc = {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
    id: did,
    verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: multibase }],
    service: [],
  }
  return {
    did,
    signingKey: keypair.did(),
    async genesis(seq, records) {
      const blocks = new BlockMap()
      let mst = await MST.create(new MemoryBlockstore())
      const ops: CommitEvent['ops'] = []
      for (const r of records) {
        const cid = cidToString(await createCid(0x71, r.bytes))
        blocks.set(parseCid(cid), r.bytes)
        mst = await mst.add(r.path, parseCid(cid))
        ops.push({ action: 'create', path: r.path, cid })
      }
      const { root, blocks: nodes } = await mst.getUnstoredBlocks()
      blocks.addMap(nodes)
      const rev = TID.nextStr()
      const commit = await signCommit({ did, version: 3, data: root, rev, prev: null }, keypair)
      const commitCid = await blocks.add(commit)
      return {
        type: 'commit',
        seq,
        repo: did,
        rev,
        since: null,
        commit: commitCid.toString(),
        blocks: await blocksToCarFile(commitCid, blocks),
        ops,
        time: new Date().toISOString(),
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}
