// The node store of src/verify/mst.ts names each node it reads by the CID it was read under (every
// caller has checked the blocks' hashes), instead of serializing and hashing the node again when its
// CID is asked for. Those names must be the CIDs the library computes from the bytes, and the trees an
// inversion rebuilds around read nodes must come out as @atproto/repo's.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { MSTNode } from '@atcute/mst'
import { MST, MemoryBlockstore } from '@atproto/repo'
import { parseCid } from '@atproto/lex-data'
import { invertOps, mstView, toBlockstore } from '../src/verify/mst.ts'

const exampleKeys = readFileSync(new URL('./fixtures/atproto-interop/mst/example_keys.txt', import.meta.url), 'utf8').split('\n').filter(Boolean)
const leaf = 'bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454'

async function blocksOf(tree: MST, into: Map<string, Uint8Array>): Promise<string> {
  const { blocks } = await tree.getUnstoredBlocks()
  for (const [cid, bytes] of blocks) into.set(cid.toString(), bytes)
  return (await tree.getPointer()).toString()
}

describe('the node store of verify/mst.ts', () => {
  const setup = async () => {
    const [base, added] = [exampleKeys.slice(0, 400), exampleKeys.slice(400, 440)]
    let before = await MST.create(new MemoryBlockstore())
    for (const k of base) before = await before.add(k, parseCid(leaf))
    let after = before
    for (const k of added) after = await after.add(k, parseCid(leaf))
    const removed = base.filter((_, i) => i % 10 === 3)
    for (const k of removed) after = await after.delete(k)
    const blocks = new Map<string, Uint8Array>()
    const beforeRoot = await blocksOf(before, blocks)
    const afterRoot = await blocksOf(after, blocks)
    return { blocks, beforeRoot, afterRoot, added, removed }
  }

  it('gives every node it reads the CID the library computes from the node', async () => {
    const { blocks } = await setup()
    expect(blocks.size).toBeGreaterThan(100)
    const store = toBlockstore(blocks)
    for (const [cid, bytes] of blocks) {
      const read = await store.nodes.get(cid)
      const fresh = await MSTNode.deserialize(bytes)
      expect((await fresh.cid()).$link).toBe(cid)
      expect((await read.cid()).$link).toBe(cid)
    }
  })

  it('inverts a commit of 40 creates and 40 deletes to @atproto/repo\'s root, over nodes it read first', async () => {
    const { blocks, beforeRoot, afterRoot, added, removed } = await setup()
    const ops = [
      ...added.map((path) => ({ action: 'create' as const, path })),
      ...removed.map((path) => ({ action: 'delete' as const, path, prev: leaf })),
    ].sort((a, b) => (a.path < b.path ? -1 : 1))
    const store = toBlockstore(blocks)
    // the walks read (and name) the nodes on every op's path before the inversion rebuilds around them
    const view = mstView(store, afterRoot)
    for (const k of added) expect(await view.get(k)).toBe(leaf)
    for (const k of removed) expect(await view.get(k)).toBeNull()
    expect(await invertOps(store, afterRoot, ops)).toBe(beforeRoot)
    expect(await invertOps(toBlockstore(blocks), afterRoot, ops.slice(1))).not.toBe(beforeRoot)
  })
})
