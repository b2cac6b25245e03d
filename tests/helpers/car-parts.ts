/**
 * The blocks of a #commit's CAR as a map, and back: for tests and the bench to forge one lie at a
 * time into a real commit while every other block hash stays honest.
 */
import { fromUint8Array, writeCarStream } from '@atcute/car'
import { decode, encode } from '@atcute/cbor'
import { create as createCid, toString as cidToString, fromString as cidFromString } from '@atcute/cid'
import type { CommitEvent } from '../../src/firehose/events.ts'

export interface CarParts {
  root: string
  blocks: Map<string, Uint8Array>
}

export function readCarParts(bytes: Uint8Array): CarParts {
  const r = fromUint8Array(bytes)
  const blocks = new Map<string, Uint8Array>()
  for (const e of r) blocks.set(cidToString(e.cid), e.bytes)
  return { root: r.roots[0]!.$link, blocks }
}

export async function writeCarParts(parts: CarParts): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  const blocks = [...parts.blocks].map(([cid, data]) => ({ cid: cidFromString(cid).bytes, data }))
  for await (const c of writeCarStream([{ $link: parts.root }], blocks)) chunks.push(c)
  return Buffer.concat(chunks)
}

/**
 * Re-signs nothing: rewrites the commit block with `edit` applied, gives it its honest new CID, and
 * points the event at it — so block hashes stay valid and only what `edit` changed is a lie.
 */
export async function editCommitBlock(evt: CommitEvent, edit: (commit: Record<string, any>) => void): Promise<CommitEvent> {
  const parts = readCarParts(evt.blocks)
  const commit = decode(parts.blocks.get(parts.root)!) as Record<string, any>
  edit(commit)
  const bytes = encode(commit)
  const cid = cidToString(await createCid(0x71, bytes))
  parts.blocks.delete(parts.root)
  parts.blocks.set(cid, bytes)
  parts.root = cid
  return { ...evt, commit: cid, blocks: await writeCarParts(parts) }
}
