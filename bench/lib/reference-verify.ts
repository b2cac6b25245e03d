/**
 * The reference path: the same rules as src/verify/commit.ts, checked only with the Bluesky
 * reference libraries (@atproto/repo for CAR, MST and commit encoding; @atproto/crypto, strict
 * low-S, for the signature). It is slow and shares no fast-path code: it is the oracle the fast path
 * must agree with, frame by frame (the bench over the whole stream, `npm test` on a sample).
 */
import { MST, MemoryBlockstore, readCar, verifyCommitSig, cborToLex } from '@atproto/repo'
import { parseDidKey } from '@atproto/crypto'
import { TID } from '@atproto/common-web'
import { isCid, isCidForBytes, parseCid, type Cid } from '@atproto/lex-data'
import type { CommitEvent } from '../../src/firehose/events.ts'
import type { ReasonCode } from '../../src/verify/reasons.ts'

export type Verdict = 'ok' | ReasonCode

const MAX_BLOCKS_BYTES = 2_000_000
const MAX_OPS = 200
const MAX_RECORD_BYTES = 1_000_000

const missingBlock = (err: unknown) => {
  const name = (err as Error)?.constructor?.name
  return name === 'MissingBlockError' || name === 'MissingBlocksError' || name === 'UnexpectedObjectError'
}

let emptyRoot: string | undefined

/** The verdict of the reference libraries on one #commit: 'ok' or the reason it is refused. */
export async function referenceVerdict(evt: CommitEvent, didKey: string, inScope: (collection: string) => boolean = () => false): Promise<Verdict> {
  if (evt.blocks.byteLength > MAX_BLOCKS_BYTES || evt.ops.length > MAX_OPS) return 'too-big'
  if (!TID.is(evt.rev)) return 'commit-mismatch'

  let car
  try {
    car = await readCar(evt.blocks, { skipCidVerification: true })
  } catch {
    return 'car-invalid'
  }
  for (const { cid, bytes } of car.blocks.entries()) {
    if (cid.code !== 0x71 || cid.multihash.code !== 0x12) return 'cid-mismatch'
    if (!(await isCidForBytes(cid, bytes))) return 'cid-mismatch'
  }
  if (car.roots.length !== 1 || car.roots[0]!.toString() !== evt.commit) return 'car-invalid'
  const commitBytes = car.blocks.get(car.roots[0]!)
  if (!commitBytes) return 'car-invalid'

  let commit: Record<string, unknown>
  try {
    commit = cborToLex(commitBytes) as Record<string, unknown>
  } catch {
    return 'commit-mismatch'
  }
  if (typeof commit !== 'object' || commit === null || commit.version !== 3) return 'commit-mismatch'
  if (typeof commit.did !== 'string' || typeof commit.rev !== 'string' || !isCid(commit.data)) return 'commit-mismatch'
  if (!(commit.sig instanceof Uint8Array) || (commit.prev != null && !isCid(commit.prev))) return 'commit-mismatch'
  if (commit.did !== evt.repo || commit.rev !== evt.rev) return 'commit-mismatch'

  try {
    parseDidKey(didKey)
  } catch {
    return 'identity-unresolved'
  }
  let signed = false
  try {
    signed = await verifyCommitSig(commit as never, didKey)
  } catch {
    signed = false
  }
  if (!signed) return 'bad-signature'

  const storage = new MemoryBlockstore(car.blocks)
  const data = commit.data as Cid
  const tree = MST.load(storage, data)
  const seen = new Set<string>()
  try {
    for (const op of evt.ops) {
      if (seen.has(op.path)) return 'mst-proof'
      seen.add(op.path)
      const parts = op.path.split('/')
      if (parts.length !== 2 || !parts[0]) return 'mst-proof'
      const found = (await tree.get(op.path))?.toString() ?? null
      const claimed = op.action === 'delete' ? null : op.cid
      if (op.action !== 'delete' && !claimed) return 'mst-proof'
      if (found !== claimed) return 'mst-proof'
      if (op.action !== 'create' && !op.prev) return 'missing-prev'
      if (claimed && inScope(parts[0])) {
        const bytes = car.blocks.get(parseCid(claimed))
        if (!bytes) return 'mst-proof'
        if (bytes.byteLength > MAX_RECORD_BYTES) return 'too-big'
      }
      // no covering proof (left/right neighbours): a node neither the lookup nor the inversion reads
      // proves nothing, and its absence is no reason to refuse
    }
  } catch (err) {
    if (missingBlock(err)) return 'mst-proof'
    throw err
  }

  emptyRoot ??= (await (await MST.create(new MemoryBlockstore())).getPointer()).toString()
  const expected = evt.prevData ?? (evt.since === null ? emptyRoot : undefined)
  if (expected === undefined) return 'missing-prev'
  let inverted: string
  try {
    let t = MST.load(storage, data)
    for (const op of [...evt.ops].reverse()) {
      if (op.action === 'create') t = await t.delete(op.path)
      else if (op.action === 'update') t = await t.update(op.path, parseCid(op.prev!))
      else t = await t.add(op.path, parseCid(op.prev!))
    }
    inverted = (await t.getPointer()).toString()
  } catch (err) {
    return missingBlock(err) ? 'mst-proof' : 'inversion-mismatch'
  }
  return inverted === expected ? 'ok' : 'inversion-mismatch'
}
