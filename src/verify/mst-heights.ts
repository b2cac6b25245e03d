/**
 * Memoised MST key heights for @atcute/mst's node checks.
 *
 * `MSTNode.create` hashes every key of a node to check that they share one height, and it runs for
 * each node read and for each node an inversion makes. Inverting an op re-makes every node on its
 * path, so the same keys are hashed again and again. In the bench's profile that was about 4.7 s of
 * SHA-256 per 50 000 commits, near a fifth of the verification thread. @atcute/mst 1.0.3 has no hook for
 * it, so `installKeyHeightMemo` replaces the static `create` with one that reads heights from a memo
 * (filled by the library's own `getKeyHeight`). It accepts a node only when the library's checks
 * pass; anything else goes to the library's `create`, so every rejection is the library's own error.
 */
import { MSTNode, getKeyHeight } from '@atcute/mst'
import type { CidLink } from '@atcute/cid'

type Create = typeof MSTNode.create

/** The library's own `create`: what rejects, and the oracle the tests compare with. */
export const libraryCreate: Create = MSTNode.create.bind(MSTNode)

/**
 * Bounded by clearing when full. The repeats that pay are within one commit (a node read, then re-made
 * by the inversion; about a hundred keys); a repo's next commit is typically thousands of commits
 * later on a busy stream, so a memo big enough to span that would hold megabytes for few hits.
 */
export const MEMO_LIMIT = 4096
const heights = new Map<string, number>()

export async function keyHeight(key: string): Promise<number> {
  const known = heights.get(key)
  if (known !== undefined) return known
  const h = await getKeyHeight(key)
  if (heights.size >= MEMO_LIMIT) heights.clear()
  heights.set(key, h)
  return h
}

/** Number of heights held (for the tests of the bound). */
export const memoSize = (): number => heights.size

// the constructor is protected in the typings: `create` is the library's way in, and ours only
// calls it once the library's checks have passed
const Node = MSTNode as unknown as new (keys: readonly string[], values: readonly CidLink[], subtrees: readonly (CidLink | null)[]) => MSTNode

async function sameHeight(keys: readonly string[]): Promise<boolean> {
  let first: number | undefined
  for (const key of keys) {
    // a known height is read without an await: most keys are known, and a microtask each adds up
    const h = heights.get(key) ?? (await keyHeight(key))
    first ??= h
    if (h !== first) return false
  }
  return true
}

const memoCreate: Create = async (keys, values, subtrees) => {
  if (subtrees.length === keys.length + 1 && keys.length === values.length && (await sameHeight(keys))) {
    return new Node(keys, values, subtrees)
  }
  return libraryCreate(keys, values, subtrees)
}

/** Idempotent; mst.ts installs it on load, so every read and inversion in the thread goes through it. */
export function installKeyHeightMemo(): void {
  MSTNode.create = memoCreate
}
