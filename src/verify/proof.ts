/**
 * Offline re-proof of what the mirror stored: a record (or its absence) from the kept blocks — commit
 * signature, MST path from the commit's data root, record bytes to CID — and a record row's JSON
 * against the record's block. Pure: blocks, keys and claims in, the proven facts (or a named failure) out.
 * The store and the proof CAR it exports are checked with the same function.
 */
import { isDeepStrictEqual } from 'node:util'
import { decode } from '@atcute/cbor'
import { checkBlock, readVerifiedCar } from './car.ts'
import { parseCommitBlock, verifyCommitSignature } from './commit.ts'
import { IncompleteProofError, mstView, toBlockstore } from './mst.ts'
import { VerificationError } from './reasons.ts'

/** Why a stored proof no longer holds. A closed list shared by `verify`, `audit` and the tests. */
export const PROOF_FAILURES = [
  'block-missing', // a block the proof needs is not stored
  'cid-mismatch', // a stored block's bytes do not hash to its CID
  'commit-mismatch', // the commit block is not a v3 commit of this DID / rev / data root
  'bad-signature', // the commit signature does not verify with the stored signing key
  'mst-proof', // the MST from the commit's data root does not map the key to the claimed CID
  'value-mismatch', // a record row's JSON is not what the record's block decodes to
  'car-invalid', // an exported proof CAR does not parse or has no single root
] as const

export type ProofFailureCode = (typeof PROOF_FAILURES)[number]

/** A stored proof that does not hold, with the block (when one is to blame). */
export class ProofFailure extends Error {
  readonly code: ProofFailureCode
  readonly cid?: string
  constructor(code: ProofFailureCode, message: string, opts: { cid?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined)
    this.name = 'ProofFailure'
    this.code = code
    if (opts.cid) this.cid = opts.cid
  }
}

/** What a proof must show: `did`'s commit `commitCid`, signed by `signingKey`, maps the key to `cid`. */
export interface RecordProofClaim {
  did: string
  commitCid: string
  signingKey: string
  collection: string
  rkey: string
  /** the record's CID, or null when the proof must show the key absent (a deletion) */
  cid: string | null
  /** when known, the commit's rev must equal it */
  rev?: string
}

/** The facts a proof established. */
export interface ProvenRecord {
  commitCid: string
  rev: string
  dataCid: string
  cid: string | null
  /** the record block (when the claim names a CID) */
  recordBytes?: Uint8Array
}

/**
 * Commit signatures already checked in one run, as `${commitCid} ${signingKey}`: the commit's bytes are
 * pinned by its CID (hash-checked before the cache is consulted), so one check serves every record
 * the commit proves.
 */
export type SignatureCache = Set<string>

/** Converts a verification error met while re-proving stored data into a `ProofFailure` (others are rethrown). */
export function toProofFailure(err: unknown): ProofFailure {
  if (err instanceof ProofFailure) return err
  if (err instanceof VerificationError) {
    const code: ProofFailureCode =
      err.reason === 'cid-mismatch' || err.reason === 'commit-mismatch' || err.reason === 'bad-signature' || err.reason === 'car-invalid'
        ? err.reason
        : err.reason === 'identity-unresolved'
          ? 'bad-signature'
          : 'mst-proof'
    return new ProofFailure(code, err.message, { cause: err })
  }
  throw err
}

const fail = (err: unknown): never => {
  throw toProofFailure(err)
}

/**
 * Re-proves a claim from stored blocks: every block given is hashed against its CID, the commit is
 * parsed and its signature checked, and the MST is walked from the data root using only these blocks.
 * @throws {ProofFailure} naming the first thing that does not hold
 */
export async function verifyRecordProof(
  blocks: ReadonlyMap<string, Uint8Array>,
  claim: RecordProofClaim,
  signatures?: SignatureCache,
): Promise<ProvenRecord> {
  try {
    for (const [cid, bytes] of blocks) {
      try {
        checkBlock(cid, bytes)
      } catch (err) {
        throw new ProofFailure('cid-mismatch', (err as Error).message, { cid, cause: err })
      }
    }
    const commitBytes = blocks.get(claim.commitCid)
    if (!commitBytes) throw new ProofFailure('block-missing', `commit block ${claim.commitCid} is not stored`, { cid: claim.commitCid })
    const commit = parseCommitBlock(commitBytes)
    if (commit.did !== claim.did) throw new ProofFailure('commit-mismatch', `commit ${claim.commitCid} is for ${commit.did}, not ${claim.did}`)
    if (claim.rev !== undefined && commit.rev !== claim.rev) {
      throw new ProofFailure('commit-mismatch', `commit ${claim.commitCid} has rev ${commit.rev}, not ${claim.rev}`)
    }
    const signed = `${claim.commitCid} ${claim.signingKey}`
    if (!signatures?.has(signed)) {
      verifyCommitSignature(commitBytes, claim.signingKey)
      signatures?.add(signed)
    }

    const path = `${claim.collection}/${claim.rkey}`
    let found: string | null
    try {
      found = await mstView(toBlockstore(new Map(blocks)), commit.data).get(path)
    } catch (err) {
      if (err instanceof IncompleteProofError) throw new ProofFailure('block-missing', `MST path to ${path}: ${err.message}`, { cause: err })
      throw new ProofFailure('mst-proof', `MST walk to ${path} failed: ${(err as Error).message}`, { cause: err })
    }
    if (found !== claim.cid) {
      throw new ProofFailure('mst-proof', `the MST at ${claim.commitCid} maps ${path} to ${found ?? 'nothing'}, not ${claim.cid ?? 'nothing'}`)
    }
    let recordBytes: Uint8Array | undefined
    if (claim.cid) {
      recordBytes = blocks.get(claim.cid)
      if (!recordBytes) throw new ProofFailure('block-missing', `record block ${claim.cid} is not stored`, { cid: claim.cid })
    }
    return { commitCid: claim.commitCid, rev: commit.rev, dataCid: commit.data, cid: claim.cid, recordBytes }
  } catch (err) {
    return fail(err)
  }
}

/**
 * Re-proves a claim from a proof CAR (as `com.atproto.sync.getRecord` returns or `export-proof`
 * writes): its root must be the signed commit.
 * @throws {ProofFailure}
 */
export async function verifyProofCar(
  car: Uint8Array,
  claim: Omit<RecordProofClaim, 'commitCid'>,
  signatures?: SignatureCache,
): Promise<ProvenRecord> {
  let read
  try {
    read = readVerifiedCar(car)
  } catch (err) {
    return fail(err)
  }
  if (read.roots.length !== 1) throw new ProofFailure('car-invalid', `proof CAR has ${read.roots.length} roots, not 1`)
  return verifyRecordProof(read.blocks, { ...claim, commitCid: read.roots[0]! }, signatures)
}

/**
 * Checks a record row against the record's block: the block hashes to the row's CID and the row's
 * JSON is what the block decodes to.
 * @throws {ProofFailure} `cid-mismatch` or `value-mismatch`
 */
export function verifyRecordValue(cid: string, cbor: Uint8Array, json: string): void {
  try {
    checkBlock(cid, cbor)
  } catch (err) {
    throw new ProofFailure('cid-mismatch', `record ${(err as Error).message}`, { cid, cause: err })
  }
  let stored: unknown
  try {
    stored = JSON.parse(json)
  } catch (err) {
    throw new ProofFailure('value-mismatch', `value_json is not JSON: ${(err as Error).message}`, { cause: err })
  }
  const decoded = JSON.parse(JSON.stringify(decode(cbor)))
  if (!isDeepStrictEqual(stored, decoded)) {
    throw new ProofFailure('value-mismatch', `value_json differs from the record its block (${cid}) holds`)
  }
}
