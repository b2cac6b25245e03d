/**
 * Proof of a #sync event: the CAR's blocks hash to their CIDs, its root is a v3 commit of the event's
 * DID and rev, and the commit is signed by the given key. What it says about the repo's data is left
 * to the caller: same data as stored → just a new head; other data → resync.
 */
import type { SyncEvent } from '../firehose/events.ts'
import { LIMITS } from '../firehose/limits.ts'
import { readVerifiedCar } from './car.ts'
import { parseCommitBlock, verifyCommitSignature, type SignedCommit } from './commit.ts'
import { VerificationError } from './reasons.ts'
import { isTid } from './tid.ts'

/** A #sync whose signed commit has been proven with `signingKey`. */
export interface VerifiedSync {
  readonly verified: true
  seq: number
  time: string
  did: string
  rev: string
  /** CID of the commit block */
  cid: string
  commit: SignedCommit
  commitBytes: Uint8Array
  signingKey: string
}

/**
 * Checks the #sync's commit block and signature.
 * @throws {VerificationError} `too-big`, `car-invalid`, `cid-mismatch`, `commit-mismatch` or `bad-signature`
 */
export function verifySync(evt: SyncEvent, signingKey: string): VerifiedSync {
  if (evt.blocks.byteLength > LIMITS.maxBlocksBytes) {
    throw new VerificationError('too-big', `#sync blocks of ${evt.blocks.byteLength} bytes exceed ${LIMITS.maxBlocksBytes}`)
  }
  if (!isTid(evt.rev)) throw new VerificationError('commit-mismatch', `#sync rev ${evt.rev} is not a TID`)
  const car = readVerifiedCar(evt.blocks)
  const root = car.roots[0]
  const bytes = root ? car.blocks.get(root) : undefined
  if (!root || car.roots.length !== 1 || !bytes) throw new VerificationError('car-invalid', '#sync CAR has no commit block at its single root')
  const commit = parseCommitBlock(bytes)
  if (commit.did !== evt.did) throw new VerificationError('commit-mismatch', `#sync commit did ${commit.did} is not the event did ${evt.did}`)
  if (commit.rev !== evt.rev) throw new VerificationError('commit-mismatch', `#sync commit rev ${commit.rev} is not the event rev ${evt.rev}`)
  verifyCommitSignature(bytes, signingKey)
  return { verified: true, seq: evt.seq, time: evt.time, did: evt.did, rev: evt.rev, cid: root, commit, commitBytes: bytes, signingKey }
}
