/**
 * Proof of one #commit (sync 1.1): block hashes, commit fields, signature, MST op proofs and the
 * inversion to `prevData`. Pure: bytes and a key in, a `VerifiedCommit` (or a reasoned refusal) out.
 * The chain against stored state is `chain.ts`; choosing and refreshing the key is the caller's job.
 */
import { decode, encode } from '@atcute/cbor'
import type { CommitEvent, OpAction } from '../firehose/events.ts'
import { LIMITS } from '../firehose/limits.ts'
import { readVerifiedCar, type BlockSet } from './car.ts'
import { emptyTreeRoot, IncompleteProofError, invertOps, mstView, nodesInRanges, toBlockstore, type KeyRange } from './mst.ts'
import { VerificationError } from './reasons.ts'
import { verifySignature, UnsupportedKeyError } from './signature.ts'
import { isTid } from './tid.ts'

export interface SignedCommit {
  did: string
  rev: string
  /** MST root */
  data: string
  prev: string | null
  sig: Uint8Array
  version: number
}

export interface VerifiedOp {
  action: OpAction
  path: string
  collection: string
  rkey: string
  cid: string | null
  prev: string | null
  /** the record block (create/update) when the CAR carries it */
  recordBytes?: Uint8Array
  /** CIDs of the MST nodes proving the op in the new tree */
  proofPath: string[]
}

/** A commit whose every claim has been proven against its blocks and the given signing key. */
export interface VerifiedCommit {
  readonly verified: true
  seq: number
  time: string
  did: string
  rev: string
  since: string | null
  cid: string
  commit: SignedCommit
  commitBytes: Uint8Array
  prevData: string | null
  signingKey: string
  ops: VerifiedOp[]
  blocks: BlockSet
  /** the binary CID of each of `blocks` (absent: parse the strings) */
  cidBytes?: ReadonlyMap<string, Uint8Array>
  /**
   * with `scopeKeys`: the MST nodes of `blocks` that in-scope keys could sit under (`nodesInRanges`),
   * the ones a mirror keeps to prove its records from this head
   */
  scopeNodes?: string[]
}

export interface CommitCheckOptions {
  /** collections whose record blocks must be present and within limits */
  inScope?: (collection: string) => boolean
  /** the same scope as MST key ranges: set, the result lists `scopeNodes` */
  scopeKeys?: KeyRange[]
}

/** Decodes and checks the shape of a signed v3 commit block. */
export function parseCommitBlock(bytes: Uint8Array): SignedCommit {
  let obj: Record<string, any>
  try {
    obj = decode(bytes)
  } catch (err) {
    throw new VerificationError('commit-mismatch', `commit block is not DAG-CBOR: ${(err as Error).message}`)
  }
  if (typeof obj !== 'object' || obj === null) throw new VerificationError('commit-mismatch', 'commit block is not a map')
  const { did, rev, data, prev, sig, version } = obj
  if (version !== 3) throw new VerificationError('commit-mismatch', `commit version ${String(version)} is not 3`)
  if (typeof did !== 'string' || typeof rev !== 'string') throw new VerificationError('commit-mismatch', 'commit lacks did or rev')
  if (typeof data?.$link !== 'string') throw new VerificationError('commit-mismatch', 'commit data is not a CID link')
  if (!(sig?.buf instanceof Uint8Array)) throw new VerificationError('commit-mismatch', 'commit has no signature bytes')
  if (prev != null && typeof prev.$link !== 'string') throw new VerificationError('commit-mismatch', 'commit prev is not a CID link')
  return { did, rev, data: data.$link, prev: prev?.$link ?? null, sig: sig.buf, version }
}

/**
 * Verifies the signature of a commit block with an atproto did:key.
 * @throws {VerificationError} `bad-signature`
 */
export function verifyCommitSignature(commitBytes: Uint8Array, signingKey: string): void {
  const { sig, ...unsigned } = decode(commitBytes) as Record<string, unknown>
  const signed = (sig as { buf: Uint8Array }).buf
  let ok: boolean
  try {
    ok = verifySignature(signingKey, encode(unsigned), signed)
  } catch (err) {
    if (err instanceof UnsupportedKeyError) throw new VerificationError('identity-unresolved', err.message, { cause: err })
    throw err
  }
  if (!ok) throw new VerificationError('bad-signature', `commit signature does not verify with ${signingKey}`)
}

/**
 * The checks of `verifyCommit` that come before the signature: block hashes, the CAR root is the
 * event's commit, and the commit block's did and rev are the event's.
 * @throws {VerificationError}
 */
export function readCommitBlock(evt: CommitEvent): { car: ReturnType<typeof readVerifiedCar>; commitBytes: Uint8Array; commit: SignedCommit } {
  // a copy of just the CAR: the frame may be a slice of a larger socket read, which every block view
  // (kept until the batch is written) would otherwise keep alive; `new Uint8Array` copies even a
  // Buffer, whose slice() is a view
  const car = readVerifiedCar(new Uint8Array(evt.blocks))
  if (car.roots.length !== 1 || car.roots[0] !== evt.commit) {
    throw new VerificationError('car-invalid', `CAR root ${car.roots.join(',') || '(none)'} is not the commit ${evt.commit}`)
  }
  const commitBytes = car.blocks.get(evt.commit)
  if (!commitBytes) throw new VerificationError('car-invalid', `commit block ${evt.commit} is not in the CAR`)
  const commit = parseCommitBlock(commitBytes)
  if (commit.did !== evt.repo) throw new VerificationError('commit-mismatch', `commit did ${commit.did} is not the event repo ${evt.repo}`)
  if (commit.rev !== evt.rev) throw new VerificationError('commit-mismatch', `commit rev ${commit.rev} is not the event rev ${evt.rev}`)
  return { car, commitBytes, commit }
}

/**
 * Proves a #commit against its own blocks and `signingKey`: every block hash, the commit fields, the
 * signature, each op in the new MST, and (sync 1.1) that inverting the ops yields `prevData`.
 * @throws {VerificationError} with the reason of the first failed check
 */
export async function verifyCommit(
  evt: CommitEvent,
  signingKey: string,
  opts: CommitCheckOptions = {},
): Promise<VerifiedCommit> {
  if (evt.blocks.byteLength > LIMITS.maxBlocksBytes) {
    throw new VerificationError('too-big', `blocks of ${evt.blocks.byteLength} bytes exceed ${LIMITS.maxBlocksBytes}`)
  }
  if (evt.ops.length > LIMITS.maxOps) throw new VerificationError('too-big', `${evt.ops.length} ops exceed ${LIMITS.maxOps}`)
  if (!isTid(evt.rev)) throw new VerificationError('commit-mismatch', `rev ${evt.rev} is not a TID`)

  const { car, commitBytes, commit } = readCommitBlock(evt)
  verifyCommitSignature(commitBytes, signingKey)

  const store = toBlockstore(car.blocks)
  const tree = mstView(store, commit.data)
  const ops: VerifiedOp[] = []
  const seen = new Set<string>()
  try {
    for (const op of evt.ops) {
      if (seen.has(op.path)) throw new VerificationError('mst-proof', `op path ${op.path} appears twice`)
      seen.add(op.path)
      const slash = op.path.indexOf('/')
      if (slash <= 0 || slash !== op.path.lastIndexOf('/')) {
        throw new VerificationError('mst-proof', `op path ${op.path} is not collection/rkey`)
      }
      const collection = op.path.slice(0, slash)
      const proof = await tree.prove(op.path)
      const found = proof.cid
      const claimed = op.action === 'delete' ? null : op.cid
      if (op.action !== 'delete' && !claimed) throw new VerificationError('mst-proof', `${op.action} of ${op.path} has no cid`)
      if (found !== claimed) {
        throw new VerificationError('mst-proof', `${op.path}: the MST holds ${found ?? 'nothing'}, the op claims ${claimed ?? 'a delete'}`)
      }
      if (op.action !== 'create' && !op.prev) {
        throw new VerificationError('missing-prev', `${op.action} of ${op.path} has no prev (sync 1.1)`)
      }
      if (op.action === 'create' && op.prev) {
        // the inversion ignores it, so nothing would prove it: a created record has no previous version
        throw new VerificationError('inversion-mismatch', `create of ${op.path} claims a previous version ${op.prev}`)
      }
      const recordBytes = claimed ? car.blocks.get(claimed) : undefined
      if (claimed && opts.inScope?.(collection)) {
        if (!recordBytes) throw new VerificationError('mst-proof', `record block ${claimed} for ${op.path} is not in the CAR`)
        if (recordBytes.byteLength > LIMITS.maxRecordBytes) {
          throw new VerificationError('too-big', `record ${op.path} of ${recordBytes.byteLength} bytes exceeds ${LIMITS.maxRecordBytes}`)
        }
      }
      ops.push({
        action: op.action,
        path: op.path,
        collection,
        rkey: op.path.slice(slash + 1),
        cid: claimed,
        prev: op.prev ?? null,
        recordBytes,
        proofPath: proof.proofPath,
      })
    }

    const expected = evt.prevData ?? (evt.since === null ? await emptyTreeRoot() : undefined)
    if (expected === undefined) throw new VerificationError('missing-prev', 'commit has since but no prevData (sync 1.1)')
    const inverted = await invertOps(store, commit.data, ops)
    if (inverted !== expected) {
      throw new VerificationError('inversion-mismatch', `inverting the ops gives ${inverted}, prevData is ${expected}`)
    }
  } catch (err) {
    if (err instanceof IncompleteProofError) throw new VerificationError('mst-proof', err.message, { cause: err })
    if (err instanceof VerificationError) throw err
    // @atproto/repo throws plain errors for impossible edits (e.g. add of a present key): the ops lie
    throw new VerificationError('inversion-mismatch', `ops cannot be inverted: ${(err as Error).message}`, { cause: err })
  }
  // after the verdict, and outside its try: choosing blocks to keep never turns into a refusal
  const scopeNodes = opts.scopeKeys ? await nodesInRanges(store, commit.data, opts.scopeKeys) : undefined

  return {
    verified: true,
    seq: evt.seq,
    time: evt.time,
    did: evt.repo,
    rev: evt.rev,
    since: evt.since,
    cid: evt.commit,
    commit,
    commitBytes,
    prevData: evt.prevData ?? null,
    signingKey,
    ops,
    blocks: car.blocks,
    cidBytes: car.cidBytes,
    ...(scopeNodes && { scopeNodes }),
  }
}
