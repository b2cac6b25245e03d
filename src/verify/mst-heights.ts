/**
 * Memoised MST key heights for @atcute/mst's node checks.
 *
 * `MSTNode.create` hashes every key of a node to check that they share one height, and it runs for
 * each node read and for each node an inversion makes. Inverting an op re-makes every node on its
 * path, so the same keys are hashed again and again. In the bench's profile that was about 4.7 s of
 * SHA-256 per 50 000 commits, near a fifth of the verification thread. @atcute/mst 1.0.3 has no hook for
 * it, so `installKeyHeightMemo` replaces the static `create` with one that reads heights from a memo,
 * and a node's `height()` with one that reads its first key's height from the same memo (the node
 * was made by `create`, so the key is almost always there). It accepts a node only when the
 * library's checks pass; anything else goes to the library's `create`, so every rejection is the
 * library's own error.
 *
 * A height the memo lacks is computed here, not by the library's `getKeyHeight`: that one encodes the
 * key to UTF-8 bytes and then hashes them, two native calls; `node:crypto`'s `hash` takes the string
 * and encodes it as UTF-8 itself, one call (about 1.0 against 2.2 µs per key on the bench machine).
 * The rule is the spec's (leading zero bits of SHA-256, counted in pairs); the library's function is
 * the oracle in tests/mst-heights.test.ts.
 */
import { hash } from 'node:crypto'
import { MSTNode } from '@atcute/mst'
import type { CidLink } from '@atcute/cid'

type Create = typeof MSTNode.create

/** The library's own `create`: what rejects, and the oracle the tests compare with. */
export const libraryCreate: Create = MSTNode.create.bind(MSTNode)
/** The library's own `height` method (the tests' oracle for ours). */
export const libraryHeight: MSTNode['height'] = MSTNode.prototype.height

/**
 * Bounded by clearing when full. The repeats that pay are within one commit (a node read, then re-made
 * by the inversion; about a hundred keys); a repo's next commit is typically thousands of commits
 * later on a busy stream, so a memo big enough to span that would hold megabytes for few hits.
 */
export const MEMO_LIMIT = 4096
const heights = new Map<string, number>()

/** The MST height of `key`: leading zero bits of SHA-256(UTF-8 of the key), counted two at a time. */
export function computeKeyHeight(key: string): number {
  const digest = hash('sha256', key, 'buffer')
  let zeros = 0
  for (const byte of digest) {
    if (byte === 0) {
      zeros += 4
      continue
    }
    // a byte below 64 starts with two zero bits, below 16 with four, below 4 with six
    if (byte < 4) zeros += 3
    else if (byte < 16) zeros += 2
    else if (byte < 64) zeros += 1
    break
  }
  return zeros
}

/** `computeKeyHeight` through the memo. */
export function keyHeight(key: string): number {
  const known = heights.get(key)
  if (known !== undefined) return known
  const h = computeKeyHeight(key)
  if (heights.size >= MEMO_LIMIT) heights.clear()
  heights.set(key, h)
  return h
}

/** Number of heights held (for the tests of the bound). */
export const memoSize = (): number => heights.size

// the constructor is protected in the typings: `create` is the library's way in, and ours only
// calls it once the library's checks have passed
const Node = MSTNode as unknown as new (keys: readonly string[], values: readonly CidLink[], subtrees: readonly (CidLink | null)[]) => MSTNode

function sameHeight(keys: readonly string[]): boolean {
  if (keys.length === 0) return true
  const first = keyHeight(keys[0]!)
  for (let i = 1; i < keys.length; i++) if (keyHeight(keys[i]!) !== first) return false
  return true
}

const memoCreate: Create = async (keys, values, subtrees) => {
  if (subtrees.length === keys.length + 1 && keys.length === values.length && sameHeight(keys)) {
    return new Node(keys, values, subtrees)
  }
  return libraryCreate(keys, values, subtrees)
}

// the library's cache field, internal in the typings; the same field its own `height()` fills
type HeightCache = { _height?: number | null }

/** The library's `height()` with the key's height from the memo: empty node 0, else its first key's, else null. */
async function memoHeight(this: MSTNode): Promise<number | null> {
  const self = this as MSTNode & HeightCache
  let h = self._height
  if (h === undefined) {
    h = this.isEmpty ? 0 : this.keys.length > 0 ? keyHeight(this.keys[0]!) : null
    self._height = h
  }
  return h
}

/** Idempotent; mst.ts installs it on load, so every read and inversion in the thread goes through it. */
export function installKeyHeightMemo(): void {
  MSTNode.create = memoCreate
  MSTNode.prototype.height = memoHeight
}
