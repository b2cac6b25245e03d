/**
 * Forged but well-formed commits: a new record written into an account's real repo (as the PDS
 * serves it now) and signed with a key the test chooses. Every block hash, the MST proof and the
 * sync-1.1 inversion are honest — only the signature's authority is in question, which is what the
 * identity checks must catch.
 */
import type { Keypair } from '@atproto/crypto'
import { TID } from '@atproto/common-web'
import { BlockMap, blocksToCarFile, MemoryBlockstore, readCarWithRoot, Repo, WriteOpAction } from '@atproto/repo'
import type { CommitEvent } from '../../src/firehose/events.ts'
import { xrpcQuery, type Devnet } from './devnet.ts'

export interface ForgedCommit {
  event: CommitEvent
  uri: string
  cid: string
}

/** A #commit creating `record` in `collection` on top of the repo's current head, signed by `signer`. */
export async function forgeCommit(
  net: Devnet,
  did: string,
  opts: { collection: string; record: Record<string, unknown>; signer: Keypair; seq: number; time?: string },
): Promise<ForgedCommit> {
  const url = new URL('/xrpc/com.atproto.sync.getRepo', net.pdsUrl)
  url.searchParams.set('did', did)
  const res = await fetch(url)
  if (!res.ok) throw new Error(`getRepo ${did}: ${res.status}`)
  const { root, blocks } = await readCarWithRoot(new Uint8Array(await res.arrayBuffer()))
  const storage = new MemoryBlockstore()
  await storage.putMany(blocks)
  const repo = await Repo.load(storage, root)
  const rkey = TID.nextStr()
  const record = { $type: opts.collection, ...opts.record }
  const recordCid = await new BlockMap().add(record)
  const commit = await repo.formatCommit(
    { action: WriteOpAction.Create, collection: opts.collection as `${string}.${string}.${string}`, rkey, record },
    opts.signer,
  )
  const carBlocks = new BlockMap()
  carBlocks.addMap(commit.newBlocks)
  carBlocks.addMap(commit.relevantBlocks)
  const event: CommitEvent = {
    type: 'commit',
    seq: opts.seq,
    repo: did,
    rev: commit.rev,
    since: commit.since,
    commit: commit.cid.toString(),
    blocks: await blocksToCarFile(commit.cid, carBlocks),
    ops: [{ action: 'create', path: `${opts.collection}/${rkey}`, cid: recordCid.toString() }],
    prevData: repo.commit.data.toString(),
    time: opts.time ?? new Date().toISOString(),
  }
  return { event, uri: `at://${did}/${opts.collection}/${rkey}`, cid: recordCid.toString() }
}

/** The repo's head as the PDS reports it (to check a forged commit follows it). */
export const headRev = async (net: Devnet, did: string): Promise<string> =>
  (await xrpcQuery(net, 'com.atproto.sync.getLatestCommit', { did })).rev
