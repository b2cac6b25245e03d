/**
 * MST proofs over the blocks of a commit, through @atproto/repo's MST: which CID a key maps to,
 * the blocks that prove it, and the sync-1.1 inversion of a commit's ops back to `prevData`.
 */
import { MST, MemoryBlockstore, BlockMap } from '@atproto/repo'
import { parseCid } from '@atproto/lex-data'
import type { BlockSet } from './car.ts'

export interface MstView {
  /** CID (string) the key maps to, or null when the key is absent */
  get(key: string): Promise<string | null>
  /** CIDs of the MST nodes that prove `key`'s presence or absence */
  proofPath(key: string): Promise<string[]>
}

/** Thrown when the blocks do not hold a node the walk needs: the proof is incomplete. */
export class IncompleteProofError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'IncompleteProofError'
  }
}

export function toBlockstore(blocks: BlockSet): MemoryBlockstore {
  const map = new BlockMap()
  for (const [cid, bytes] of blocks) map.set(parseCid(cid), bytes)
  return new MemoryBlockstore(map)
}

async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    // @atproto/repo does not export its error classes; match them by name
    const name = (err as Error)?.constructor?.name
    if (name === 'MissingBlockError' || name === 'MissingBlocksError' || name === 'UnexpectedObjectError') {
      throw new IncompleteProofError(`${what}: ${(err as Error).message}`, { cause: err })
    }
    throw err
  }
}

/** A read-only view of the tree rooted at `root` over the given blocks. */
export function mstView(store: MemoryBlockstore, root: string): MstView {
  const mst = MST.load(store, parseCid(root))
  return {
    get: (key) => guard(`MST lookup of ${key}`, async () => (await mst.get(key))?.toString() ?? null),
    proofPath: (key) =>
      guard(`MST proof of ${key}`, async () => {
        const proof = await mst.getCoveringProof(key)
        return proof.cids().map((c) => c.toString())
      }),
  }
}

export interface InvertOp {
  action: 'create' | 'update' | 'delete'
  path: string
  prev?: string | null
}

/**
 * Applies the inverse of each op (create→delete, update→put prev, delete→put prev) to the tree at
 * `root` and returns the resulting root CID. Sync 1.1: that root must equal the commit's `prevData`.
 */
export async function invertOps(store: MemoryBlockstore, root: string, ops: InvertOp[]): Promise<string> {
  return guard('MST inversion', async () => {
    let mst = MST.load(store, parseCid(root))
    for (const op of [...ops].reverse()) {
      if (op.action === 'create') mst = await mst.delete(op.path)
      else if (op.action === 'update') mst = await mst.update(op.path, parseCid(op.prev!))
      else mst = await mst.add(op.path, parseCid(op.prev!))
    }
    return (await mst.getPointer()).toString()
  })
}

let emptyRoot: string | undefined

/** The root CID of an empty MST (what a genesis commit inverts to). */
export async function emptyTreeRoot(): Promise<string> {
  emptyRoot ??= (await (await MST.create(new MemoryBlockstore())).getPointer()).toString()
  return emptyRoot
}
