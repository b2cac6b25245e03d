/**
 * Proof of a whole repo (a `com.atproto.sync.getRepo` CAR), for resync and backfill: every block
 * hash, the signed commit, the full MST walk and every record block, via @atproto/repo's `verifyRepo`.
 * @atproto/repo is loaded on the first snapshot: a mirror that never resyncs does without it and the
 * logger it brings (≈ 8 MB of RSS).
 */
import { parseCid } from '@atproto/lex-data'
import { readVerifiedCar, type BlockSet } from './car.ts'
import { parseCommitBlock, verifyCommitSignature, type SignedCommit } from './commit.ts'
import { mstView, toBlockstore } from './mst.ts'
import { VerificationError } from './reasons.ts'

export interface SnapshotRecord {
  collection: string
  rkey: string
  cid: string
  bytes: Uint8Array
  proofPath: string[]
}

/** A repo proven from its root: signed commit plus the in-scope records with their MST proofs. */
export interface VerifiedRepoSnapshot {
  readonly verified: true
  did: string
  commitCid: string
  commit: SignedCommit
  signingKey: string
  records: SnapshotRecord[]
  /** commit block, MST nodes on in-scope paths, in-scope record blocks */
  proofBlocks: BlockSet
  /** the binary CID of each block of the CAR (views of it) */
  cidBytes: ReadonlyMap<string, Uint8Array>
  /** how many records the repo holds in all collections */
  totalRecords: number
  /** keys asked for in `proveAbsent` that the repo does not hold, with the MST nodes proving it */
  absent: { collection: string; rkey: string; proofPath: string[] }[]
}

/**
 * Verifies a full repo CAR for `did` with `signingKey` and extracts the records of in-scope collections.
 * For each key of `proveAbsent` the repo does not hold (records the mirror had that are gone), the
 * MST nodes proving the absence are kept too, so the tombstone can be re-proven later.
 * @throws {VerificationError} (`car-invalid`, `cid-mismatch`, `commit-mismatch`, `bad-signature`, `mst-proof`)
 */
export async function verifyRepoSnapshot(
  carBytes: Uint8Array,
  did: string,
  signingKey: string,
  inScope: (collection: string) => boolean,
  opts: { proveAbsent?: { collection: string; rkey: string }[] } = {},
): Promise<VerifiedRepoSnapshot> {
  const car = readVerifiedCar(carBytes)
  if (car.roots.length !== 1) throw new VerificationError('car-invalid', `repo CAR has ${car.roots.length} roots`)
  const commitCid = car.roots[0]
  const commitBytes = car.blocks.get(commitCid)
  if (!commitBytes) throw new VerificationError('car-invalid', `commit block ${commitCid} is not in the repo CAR`)
  const commit = parseCommitBlock(commitBytes)
  if (commit.did !== did) throw new VerificationError('commit-mismatch', `repo commit is for ${commit.did}, not ${did}`)
  verifyCommitSignature(commitBytes, signingKey)

  const { BlockMap, verifyRepo } = await import('@atproto/repo')
  const map = new BlockMap()
  for (const [cid, bytes] of car.blocks) map.set(parseCid(cid), bytes)
  let creates
  try {
    ;({ creates } = await verifyRepo(map, parseCid(commitCid), did, signingKey))
  } catch (err) {
    const name = (err as Error)?.constructor?.name
    const reason = name === 'RepoVerificationError' ? 'bad-signature' : 'mst-proof'
    throw new VerificationError(reason, `repo does not verify: ${(err as Error).message}`, { cause: err })
  }

  const view = mstView(toBlockstore(car.blocks), commit.data)
  const proofBlocks: BlockSet = new Map([[commitCid, commitBytes]])
  const records: SnapshotRecord[] = []
  for (const c of creates) {
    if (!inScope(c.collection)) continue
    const cid = c.cid.toString()
    const bytes = car.blocks.get(cid)
    if (!bytes) throw new VerificationError('mst-proof', `record block ${cid} missing from repo CAR`)
    const proofPath = await view.proofPath(`${c.collection}/${c.rkey}`)
    for (const p of proofPath) proofBlocks.set(p, car.blocks.get(p)!)
    proofBlocks.set(cid, bytes)
    records.push({ collection: c.collection, rkey: c.rkey, cid, bytes, proofPath })
  }
  const present = new Set(records.map((r) => `${r.collection}/${r.rkey}`))
  const absent: VerifiedRepoSnapshot['absent'] = []
  for (const k of opts.proveAbsent ?? []) {
    const path = `${k.collection}/${k.rkey}`
    if (present.has(path) || !inScope(k.collection)) continue
    if ((await view.get(path)) !== null) continue
    const proofPath = await view.proofPath(path)
    for (const p of proofPath) proofBlocks.set(p, car.blocks.get(p)!)
    absent.push({ collection: k.collection, rkey: k.rkey, proofPath })
  }
  return { verified: true, did, commitCid, commit, signingKey, records, proofBlocks, cidBytes: car.cidBytes, totalRecords: creates.length, absent }
}
