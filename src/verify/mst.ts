/**
 * MST proofs over the blocks of a commit, through @atcute/mst: which CID a key maps to, the blocks
 * that prove it, and the sync-1.1 inversion of a commit's ops back to `prevData`.
 *
 * @atcute/mst rather than @atproto/repo's MST: it walks and rewrites the tree several times faster
 * (the bench measures it) and checks every node it reads (key order, prefix compression, key heights).
 * @atproto/repo stays the oracle: the fast-path guard test and the bench compare verdicts frame by frame.
 */
import { MSTNode, MissingBlockError, NodeStore, NodeWalker, NodeWrangler, MemoryBlockStore, OverlayBlockStore, ReadonlyMemoryBlockStore } from '@atcute/mst'
import type { CidLink } from '@atcute/cid'
import type { BlockSet } from './car.ts'
import { installKeyHeightMemo } from './mst-heights.ts'

installKeyHeightMemo()

export interface MstView {
  /** CID (string) the key maps to, or null when the key is absent */
  get(key: string): Promise<string | null>
  /** CIDs of the MST nodes that prove `key`'s presence or absence, deepest node first */
  proofPath(key: string): Promise<string[]>
  /** both at once (one walk) */
  prove(key: string): Promise<{ cid: string | null; proofPath: string[] }>
}

/** Thrown when the blocks do not hold a node the walk needs, or hold a malformed one: the proof fails. */
export class IncompleteProofError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'IncompleteProofError'
  }
}

/** The blocks of a commit (or a stored proof) as a node store; nodes an inversion makes go to a scratch layer. */
export interface MstStore {
  readonly nodes: NodeStore
  /** the blocks themselves (the reference inversion reads them) */
  readonly blocks: BlockSet
}

/**
 * A node store that gives each node it reads the CID it was read by. The library's store leaves a
 * read node's CID to be computed again (serialize, SHA-256, base32) the first time it is asked for,
 * which walks and inversions do for about four nodes a commit. The blocks a store reads have had
 * their hashes checked (see `toBlockstore`) and the scratch layer holds nodes under the CIDs the
 * library computed, so the CID a node was found by is the CID of its bytes.
 */
class ProvenNodeStore extends NodeStore {
  override async get(cid: string | null): Promise<MSTNode> {
    const node = await super.get(cid)
    const cached = node as MSTNode & { _cid?: CidLink }
    // a plain link: CBOR encodes it from the string when a rebuilt parent refers to this node
    if (cid !== null && cached._cid === undefined) cached._cid = { $link: cid }
    return node
  }
}

/**
 * @param blocks blocks whose bytes are known to hash to their CIDs: every caller has checked them
 *   (`readVerifiedCar`, or `checkBlock` for stored ones), and the node store relies on it
 */
export function toBlockstore(blocks: BlockSet): MstStore {
  const given = new ReadonlyMemoryBlockStore(blocks as Map<string, Uint8Array<ArrayBuffer>>)
  return { nodes: new ProvenNodeStore(new OverlayBlockStore(new MemoryBlockStore(), given)), blocks }
}

async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof MissingBlockError || (err instanceof TypeError && err.message.startsWith('malformed MST node'))) {
      throw new IncompleteProofError(`${what}: ${err.message}`, { cause: err })
    }
    throw err
  }
}

async function walk(store: MstStore, root: string, key: string): Promise<{ cid: string | null; proofPath: string[] }> {
  const top = await store.nodes.get(root)
  // an empty tree has no height to walk by: the key is absent and the empty root proves it
  if (top.isEmpty) return { cid: null, proofPath: [root] }
  const walker = await NodeWalker.create(store.nodes, root)
  const cid = (await walker.findRpath(key))?.$link ?? null
  const proofPath: string[] = []
  // the walker's stack lists the deepest node first
  for (const frame of walker.stack) {
    const c = (await frame.node.cid()).$link
    if (proofPath[proofPath.length - 1] !== c) proofPath.push(c)
  }
  return { cid, proofPath }
}

/** A read-only view of the tree rooted at `root` over the given blocks. */
export function mstView(store: MstStore, root: string): MstView {
  return {
    get: (key) => guard(`MST lookup of ${key}`, async () => (await walk(store, root, key)).cid),
    proofPath: (key) => guard(`MST proof of ${key}`, async () => (await walk(store, root, key)).proofPath),
    prove: (key) => guard(`MST proof of ${key}`, () => walk(store, root, key)),
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
 * Callers prove each op against the tree first (verifyCommit does), so an inverse edit never meets a
 * key in the wrong state.
 */
export async function invertOps(store: MstStore, root: string, ops: InvertOp[]): Promise<string> {
  try {
    return await guard('MST inversion', () => invertFast(store, root, ops))
  } catch (err) {
    if (!(err instanceof IncompleteProofError)) throw err
    // @atcute/mst reads a node more than @atproto/repo in rare deletes (squashing the new top of the
    // tree); a commit whose blocks are enough for the reference library is not short of proof, so it
    // decides (the bench found 1 such frame in 5 000 with a node dropped)
    return invertReference(store.blocks, root, ops)
  }
}

async function invertFast(store: MstStore, root: string, ops: InvertOp[]): Promise<string> {
  const wrangler = new NodeWrangler(store.nodes)
  let r = root
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!
    if (op.action === 'create') r = await wrangler.deleteRecord(r, op.path)
    else r = await wrangler.putRecord(r, op.path, { $link: prevOf(op) })
  }
  return r
}

async function invertReference(blocks: BlockSet, root: string, ops: InvertOp[]): Promise<string> {
  // loaded on first need: a verification thread that never falls back does not carry the library
  const [{ BlockMap, MemoryBlockstore, MST }, { parseCid }] = await Promise.all([import('@atproto/repo'), import('@atproto/lex-data')])
  const map = new BlockMap()
  for (const [cid, bytes] of blocks) map.set(parseCid(cid), bytes)
  try {
    let t = MST.load(new MemoryBlockstore(map), parseCid(root))
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i]!
      if (op.action === 'create') t = await t.delete(op.path)
      else if (op.action === 'update') t = await t.update(op.path, parseCid(prevOf(op)))
      else t = await t.add(op.path, parseCid(prevOf(op)))
    }
    return (await t.getPointer()).toString()
  } catch (err) {
    const name = (err as Error)?.constructor?.name
    if (name === 'MissingBlockError' || name === 'MissingBlocksError') {
      throw new IncompleteProofError(`MST inversion: ${(err as Error).message}`, { cause: err })
    }
    throw err
  }
}

function prevOf(op: InvertOp): string {
  if (!op.prev) throw new Error(`${op.action} of ${op.path} has no prev to put back`)
  return op.prev
}

let emptyRoot: string | undefined

/** The root CID of an empty MST (what a genesis commit inverts to). */
export async function emptyTreeRoot(): Promise<string> {
  emptyRoot ??= (await MSTNode.empty().cid()).$link
  return emptyRoot
}

/** MST keys from `from` (included) to `to` (excluded): the keys of one collection, or of a collection prefix. */
export interface KeyRange {
  from: string
  to: string
}

/**
 * The MST keys of scope patterns (`nsid`, `prefix.*`, already checked): a key is `collection/rkey`,
 * so `nsid` is the range [`nsid/`, `nsid0`) and `prefix.*` is [`prefix.`, `prefix/`) — one contiguous
 * range each, since '0' follows '/' and '/' follows '.'.
 */
export function scopeKeyRanges(patterns: string[]): KeyRange[] {
  return patterns.map((p) => (p.endsWith('.*') ? { from: p.slice(0, -1), to: `${p.slice(0, -2)}/` } : { from: `${p}/`, to: `${p}0` }))
}

/**
 * The nodes among the store's blocks that a key in `ranges` could sit under, walked from `root`: a
 * node is kept when the key interval its parents give it meets a range, and the walk goes on into
 * the children the blocks hold. These, with the commit and the in-scope records, are what proves
 * in-scope records from this head: a node off every range only proves other collections, and a node
 * the blocks do not hold is unchanged since an earlier commit. A node that does not decode is kept
 * and not walked (the commit's verdict is not this function's business).
 */
export async function nodesInRanges(store: MstStore, root: string, ranges: KeyRange[]): Promise<string[]> {
  const kept: string[] = []
  const meets = (lo: string | null, hi: string | null) => ranges.some((r) => (lo === null || lo < r.to) && (hi === null || hi > r.from))
  const visit = async (cid: string, lo: string | null, hi: string | null): Promise<void> => {
    if (!store.blocks.has(cid) || !meets(lo, hi)) return
    kept.push(cid)
    let node: MSTNode
    try {
      node = await store.nodes.get(cid)
    } catch {
      return
    }
    const { keys, subtrees } = node
    for (let i = 0; i < subtrees.length; i++) {
      const sub = subtrees[i]
      if (sub) await visit(sub.$link, i === 0 ? lo : keys[i - 1]!, i === keys.length ? hi : keys[i]!)
    }
  }
  await visit(root, null, null)
  return kept
}
