/**
 * Forged variants of real #commit events, one lie each, for the fast-vs-reference verdict check.
 * Block hashes stay honest unless the lie is about a hash; a re-encoded commit gets its true CID.
 */
import { fromUint8Array } from '@atcute/car'
import { toBytes } from '@atcute/cbor'
import type { CommitEvent } from '../../src/firehose/events.ts'
import type { Verdict } from './reference-verify.ts'
import { editCommitBlock, readCarParts, writeCarParts } from '../../tests/helpers/car-parts.ts'

export const TAMPERS = [
  'sig-flip',
  'high-s',
  'wrong-key',
  'record-bytes',
  'op-cid',
  'prev-data',
  'drop-op',
  'drop-block',
  'no-prev',
  'truncate-car',
  'other-repo',
] as const
export type TamperKind = (typeof TAMPERS)[number]

/** The verdict each lie must get, where one reason is certain (drop-block depends on the block). */
export const EXPECTED: Partial<Record<TamperKind, Verdict>> = {
  'sig-flip': 'bad-signature',
  'high-s': 'bad-signature',
  'wrong-key': 'bad-signature',
  'record-bytes': 'cid-mismatch',
  'op-cid': 'mst-proof',
  'prev-data': 'inversion-mismatch',
  'truncate-car': 'car-invalid',
  'other-repo': 'commit-mismatch',
}

export interface Tampered {
  kind: TamperKind
  evt: CommitEvent
  /** verify with this key instead of the account's */
  key?: string
}

const HALF_ORDER_CURVES: Record<string, bigint> = {
  // did:key multibase prefixes: zQ3s… secp256k1, zDn… P-256
  zQ3s: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  zDn: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}

/** Applies one lie to `evt`. `otherKey`/`otherDid` belong to another account of the stream. */
export async function tamper(kind: TamperKind, evt: CommitEvent, signingKey: string, other: { did: string; key: string }): Promise<Tampered> {
  const ops = evt.ops.map((op) => ({ ...op }))
  switch (kind) {
    case 'sig-flip':
      return {
        kind,
        evt: await editCommitBlock(evt, (c) => {
          const sig = new Uint8Array(c.sig.buf)
          sig[10] ^= 0x01
          c.sig = toBytes(sig)
        }),
      }
    case 'high-s': {
      const n = Object.entries(HALF_ORDER_CURVES).find(([p]) => signingKey.startsWith(`did:key:${p}`))?.[1]
      if (n === undefined) throw new Error(`unknown key type ${signingKey}`)
      return {
        kind,
        evt: await editCommitBlock(evt, (c) => {
          const sig = new Uint8Array(c.sig.buf)
          const s = BigInt('0x' + Buffer.from(sig.subarray(32)).toString('hex'))
          sig.set(Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex'), 32)
          c.sig = toBytes(sig)
        }),
      }
    }
    case 'wrong-key':
      return { kind, evt, key: other.key }
    case 'record-bytes': {
      const parts = readCarParts(evt.blocks)
      const target = ops.find((op) => op.cid && parts.blocks.has(op.cid))?.cid ?? [...parts.blocks.keys()].find((c) => c !== parts.root)!
      const bytes = new Uint8Array(parts.blocks.get(target)!)
      bytes[bytes.byteLength - 1] ^= 0x01
      parts.blocks.set(target, bytes)
      return { kind, evt: { ...evt, blocks: await writeCarParts(parts) } }
    }
    case 'op-cid': {
      const op = ops[0]!
      if (op.action === 'delete') {
        op.action = 'create'
        op.cid = op.prev!
      } else {
        op.cid = evt.commit
      }
      return { kind, evt: { ...evt, ops } }
    }
    case 'prev-data':
      return { kind, evt: { ...evt, prevData: evt.commit } }
    case 'drop-op':
      if (ops.length < 2) return { kind, evt: { ...evt, prevData: evt.commit } }
      return { kind, evt: { ...evt, ops: ops.slice(0, -1) } }
    case 'drop-block': {
      const parts = readCarParts(evt.blocks)
      const records = new Set(ops.map((op) => op.cid))
      const nodes = [...parts.blocks.keys()].filter((c) => c !== parts.root && !records.has(c))
      if (nodes.length) parts.blocks.delete(nodes[nodes.length - 1]!)
      return { kind, evt: { ...evt, blocks: await writeCarParts(parts) } }
    }
    case 'no-prev': {
      const op = ops[0]!
      if (op.action === 'create') op.action = 'update'
      delete op.prev
      return { kind, evt: { ...evt, ops } }
    }
    case 'truncate-car': {
      // cut inside the last block's CID, so no reader can take the tail for a (short) block
      const r = fromUint8Array(evt.blocks)
      let last: Uint8Array | undefined
      for (const e of r) last = e.bytes
      const cut = evt.blocks.byteLength - (last?.byteLength ?? 0) - 36 + 10
      return { kind, evt: { ...evt, blocks: evt.blocks.subarray(0, cut) } }
    }
    case 'other-repo':
      return { kind, evt: { ...evt, repo: other.did } }
  }
}
