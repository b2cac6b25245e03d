/**
 * Which MST nodes of a commit the mirror keeps (`nodesInRanges`): every node an in-scope key's proof
 * needs — present or absent — and none that covers only other collections.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as CID from '@atcute/cid'
import { MemoryBlockStore, NodeStore, NodeWrangler } from '@atcute/mst'
import { collectionMatcher } from '../src/mirror/config.ts'
import { mstView, nodesInRanges, scopeKeyRanges, toBlockstore } from '../src/verify/mst.ts'
import { inRanges, subtreeKeys } from './helpers/mst.ts'

describe('scopeKeyRanges', () => {
  it('an NSID is its own keys, a prefix.* every collection under it, and nothing beside them', () => {
    const ranges = scopeKeyRanges(['org.stormlightlabs.malfestio.*', 'app.bsky.feed.like'])
    expect(ranges).toEqual([
      { from: 'org.stormlightlabs.malfestio.', to: 'org.stormlightlabs.malfestio/' },
      { from: 'app.bsky.feed.like/', to: 'app.bsky.feed.like0' },
    ])
    const keys = {
      'org.stormlightlabs.malfestio.card/3l2a': true,
      'org.stormlightlabs.malfestio.source.article/x': true,
      'org.stormlightlabs.malfestioextra.card/3l2a': false,
      'org.stormlightlabs.malfestio-x.card/3l2a': false,
      'app.bsky.feed.like/3l2a': true,
      'app.bsky.feed.likes/3l2a': false,
      'app.bsky.feed.lik/3l2a': false,
    }
    for (const [key, want] of Object.entries(keys)) expect(inRanges(ranges, key), key).toBe(want)
  })

  it("a key is in the ranges exactly when its collection matches the mirror's scope (generated collections)", () => {
    const segment = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/)
    const nsid = fc.array(segment, { minLength: 3, maxLength: 5 }).map((s) => s.join('.'))
    const pattern = fc.oneof(nsid, fc.array(segment, { minLength: 2, maxLength: 4 }).map((s) => `${s.join('.')}.*`))
    fc.assert(
      fc.property(fc.array(pattern, { minLength: 1, maxLength: 3 }), nsid, fc.stringMatching(/^[a-zA-Z0-9:~._-]{1,12}$/), (patterns, collection, rkey) => {
        expect(inRanges(scopeKeyRanges(patterns), `${collection}/${rkey}`)).toBe(collectionMatcher(patterns)(collection))
      }),
      { numRuns: 2000 },
    )
  })
})

/** A tree of several collections, as a repo of a Malfestio user holds: most keys are not Malfestio's. */
async function buildRepo(): Promise<{ blocks: Map<string, Uint8Array>; root: string; keys: string[] }> {
  const mem = new MemoryBlockStore()
  const wrangler = new NodeWrangler(new NodeStore(mem))
  const value = { $link: CID.toString(await CID.create(0x71, new Uint8Array([0xa0]))) }
  const collections = [
    ['app.bsky.feed.like', 400],
    ['app.bsky.feed.post', 200],
    ['org.stormlightlabs.malfestio.card', 150],
    ['org.stormlightlabs.malfestio.deck', 30],
    ['org.stormlightlabs.malfestioextra.card', 40],
    ['zz.other.thing', 100],
  ] as const
  const keys: string[] = []
  for (const [collection, n] of collections) for (let i = 0; i < n; i++) keys.push(`${collection}/${(1_000_000 + i * 7919).toString(36)}`)
  let root: string | null = null
  for (const key of keys) root = await wrangler.putRecord(root, key, value)
  return { blocks: new Map(mem.blocks), root: root!, keys }
}

describe('nodesInRanges', () => {
  const ranges = scopeKeyRanges(['org.stormlightlabs.malfestio.*'])

  it('keeps every node proving an in-scope key, present or absent, and drops the nodes that hold only other collections', async () => {
    const { blocks, root, keys } = await buildRepo()
    const store = toBlockstore(blocks)
    const kept = new Set(await nodesInRanges(store, root, ranges))
    const view = mstView(store, root)
    const inScope = keys.filter((k) => inRanges(ranges, k))
    expect(inScope.length).toBe(180)
    for (const key of inScope) for (const cid of await view.proofPath(key)) expect(kept.has(cid), `${key}: node ${cid}`).toBe(true)
    // absent keys inside the scope: their proofs of absence (what a delete keeps) are kept too
    const absent = ['org.stormlightlabs.malfestio.card/0', 'org.stormlightlabs.malfestio.card/zzzz', 'org.stormlightlabs.malfestio.note/a', 'org.stormlightlabs.malfestio.a/b']
    for (const key of absent) {
      expect(await view.get(key)).toBeNull()
      for (const cid of await view.proofPath(key)) expect(kept.has(cid), `${key}: node ${cid}`).toBe(true)
    }
    const all = await subtreeKeys(blocks, root)
    for (const cid of kept) expect(all.has(cid)).toBe(true)
    const dropped = [...all.keys()].filter((cid) => !kept.has(cid))
    for (const cid of dropped) expect(all.get(cid)!.filter((k) => inRanges(ranges, k))).toEqual([])
    // most of the tree is other collections: most of its nodes go
    expect(dropped.length).toBeGreaterThan(kept.size)
  })

  it('walks only the nodes the blocks hold (the rest are unchanged since an earlier commit), without error', async () => {
    const { blocks, root } = await buildRepo()
    const full = await nodesInRanges(toBlockstore(blocks), root, ranges)
    // a commit's CAR: the root and one in-scope child, the other children stored earlier
    const store = toBlockstore(blocks)
    const top = await store.nodes.get(root)
    const children = top.subtrees.filter((s): s is { $link: string } => !!s).map((s) => s.$link)
    const keptChild = children.find((c) => full.includes(c))!
    expect(keptChild).toBeDefined()
    const partial = new Map([...blocks].filter(([cid]) => cid === root || cid === keptChild || !children.includes(cid)))
    const reachable = await subtreeKeys(blocks, keptChild)
    const car = new Map([...partial].filter(([cid]) => cid === root || reachable.has(cid)))
    const kept = await nodesInRanges(toBlockstore(car), root, ranges)
    expect(kept[0]).toBe(root)
    expect(kept.every((cid) => car.has(cid))).toBe(true)
    expect(kept.sort()).toEqual(full.filter((cid) => car.has(cid)).sort())
  })

  it('an empty scope keeps no node; an unbounded one keeps the whole tree', async () => {
    const { blocks, root } = await buildRepo()
    const store = toBlockstore(blocks)
    expect(await nodesInRanges(store, root, [])).toEqual([])
    const everything = await nodesInRanges(store, root, [{ from: '', to: '\u{10ffff}' }])
    expect(everything.length).toBe((await subtreeKeys(blocks, root)).size)
  })
})
