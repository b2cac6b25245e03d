// common_prefix.json: the prefix length an MST node's entry stores (`p`) for a key after another.
// It decides the bytes, hence the CID, of every node the sync-1.1 inversion rebuilds, so a wrong
// length would fail every commit's prevData check. The vectors are held to @atproto/repo (the
// reference) and to the serializer the verifier uses (@atcute/mst's, through the `create` that
// src/verify/mst.ts installs), read back from the node's own CBOR.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as CBOR from '@atcute/cbor'
import type { CidLink } from '@atcute/cid'
import { MSTNode } from '@atcute/mst'
import { mstUtil } from '@atproto/repo'
import '../src/verify/mst.ts'
import { keyHeight } from '../src/verify/mst-heights.ts'

const vectors: { left: string; right: string; len: number }[] = JSON.parse(
  readFileSync(new URL('./fixtures/atproto-interop/mst/common_prefix.json', import.meta.url), 'utf8'),
)
const leaf = { $link: 'bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454' }

// the constructor `create` ends in, protected in the typings (as src/verify/mst-heights.ts reaches it)
const Node = MSTNode as unknown as new (keys: string[], values: CidLink[], subtrees: null[]) => MSTNode

/** the `p` the serializer writes for the second of two adjacent keys */
async function storedPrefixLength(first: string, second: string): Promise<number> {
  const keys = [first, second]
  // keys of one height go through `create`, the verifier's way to a node; "abcde" is at height 1,
  // so its pairs could never share a node: for those the node is built without the height check
  const sameHeight = keyHeight(first) === keyHeight(second)
  const node = sameHeight ? await MSTNode.create(keys, [leaf, leaf], [null, null, null]) : new Node(keys, [leaf, leaf], [null, null, null])
  const data = CBOR.decode(await node.serialize()) as { e: { p: number }[] }
  return data.e[1]!.p
}

describe('common_prefix.json', () => {
  it('has vectors', () => expect(vectors.length).toBeGreaterThanOrEqual(13))
  for (const v of vectors) {
    it(`${JSON.stringify(v.left)} · ${JSON.stringify(v.right)} → ${v.len}`, async () => {
      expect(mstUtil.countPrefixLen(v.left, v.right)).toBe(v.len)
      // two equal keys cannot sit side by side in a node: that pair is the reference's alone
      if (v.left === v.right) return
      const [first, second] = v.left < v.right ? [v.left, v.right] : [v.right, v.left]
      expect(await storedPrefixLength(first, second)).toBe(v.len)
    })
  }
})
