/**
 * CAR reading with every block proven: a block is kept only when its bytes hash to its CID.
 */
import { hash } from 'node:crypto'
import { fromUint8Array } from '@atcute/car'
import { fromDigest, toString as cidToString, CODEC_DCBOR, HASH_SHA256 } from '@atcute/cid'
import { VerificationError } from './reasons.ts'

/** Blocks keyed by CID string; every entry has been hashed and matches its CID. */
export type BlockSet = Map<string, Uint8Array>

export interface VerifiedCar {
  roots: string[]
  blocks: BlockSet
  /** each block's CID in binary form, as the CAR holds it (views of the CAR, as the blocks are) */
  cidBytes: Map<string, Uint8Array>
}

// the one-shot form: no Hash object per block (blocks are small and many)
const sha256 = (bytes: Uint8Array): Buffer => hash('sha256', bytes, 'buffer')

/**
 * Reads a CAR v1 and checks that every block's bytes hash to its CID (sha-256, DAG-CBOR codec).
 * @throws {VerificationError} `car-invalid` when the CAR does not parse, `cid-mismatch` when a block lies
 */
export function readVerifiedCar(bytes: Uint8Array): VerifiedCar {
  let reader
  try {
    reader = fromUint8Array(bytes)
  } catch (err) {
    throw new VerificationError('car-invalid', `CAR header does not parse: ${(err as Error).message}`, { cause: err })
  }
  const roots = reader.roots.map((r) => r.$link)
  const blocks: BlockSet = new Map()
  const cidBytes = new Map<string, Uint8Array>()
  try {
    for (const entry of reader) {
      const cid = cidToString(entry.cid)
      if (entry.cid.codec !== CODEC_DCBOR || entry.cid.digest.codec !== HASH_SHA256) {
        throw new VerificationError('cid-mismatch', `block ${cid} is not a sha-256 DAG-CBOR CID`)
      }
      const digest = sha256(entry.bytes)
      if (!digest.equals(entry.cid.digest.contents)) {
        throw new VerificationError(
          'cid-mismatch',
          `block ${cid} hashes to ${digest.toString('hex').slice(0, 16)}…, not its CID`,
        )
      }
      blocks.set(cid, entry.bytes)
      cidBytes.set(cid, entry.cid.bytes)
    }
  } catch (err) {
    if (err instanceof VerificationError) throw err
    throw new VerificationError('car-invalid', `CAR body does not parse: ${(err as Error).message}`, { cause: err })
  }
  return { roots, blocks, cidBytes }
}

/** The CID (sha-256, DAG-CBOR) of a block's bytes, as a base32 string. */
export const cidOfBlock = (bytes: Uint8Array): string => cidToString(fromDigest(CODEC_DCBOR, sha256(bytes)))

/**
 * Checks one stored block against its CID (offline re-verification).
 * @throws {VerificationError} `cid-mismatch`
 */
export function checkBlock(cid: string, bytes: Uint8Array): void {
  const actual = cidOfBlock(bytes)
  if (actual !== cid) throw new VerificationError('cid-mismatch', `block ${cid} hashes to ${actual}`)
}
