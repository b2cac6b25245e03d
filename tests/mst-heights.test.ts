// The key-height memo that src/verify/mst.ts installs into @atcute/mst, against the library's own
// `create` as the oracle: the same nodes, the same CIDs, the same errors.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as CBOR from '@atcute/cbor'
import * as CID from '@atcute/cid'
import { MSTNode, getKeyHeight } from '@atcute/mst'
import { toBlockstore, mstView } from '../src/verify/mst.ts'
import { MEMO_LIMIT, keyHeight, libraryCreate, memoSize } from '../src/verify/mst-heights.ts'

const fixtures = new URL('./fixtures/atproto-interop/mst/', import.meta.url)
const heightVectors: { key: string; height: number }[] = JSON.parse(readFileSync(new URL('key_heights.json', fixtures), 'utf8'))
const exampleKeys = readFileSync(new URL('example_keys.txt', fixtures), 'utf8').split('\n').filter(Boolean)
const leaf = { $link: 'bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454' }

describe('key_heights.json', () => {
  it('has vectors', () => expect(heightVectors.length).toBeGreaterThanOrEqual(9))
  for (const v of heightVectors) {
    it(`${JSON.stringify(v.key)} → ${v.height}`, async () => {
      expect(await keyHeight(v.key)).toBe(v.height)
      // the second read comes from the memo
      expect(await keyHeight(v.key)).toBe(v.height)
    })
  }
})

describe('MSTNode.create with the memo', () => {
  it('is installed by verify/mst.ts', () => {
    expect(MSTNode.create).not.toBe(libraryCreate)
  })

  const byHeight = new Map<number, string[]>()
  const grouped = async () => {
    if (byHeight.size) return byHeight
    for (const k of exampleKeys.sort()) {
      const h = await getKeyHeight(k)
      byHeight.set(h, [...(byHeight.get(h) ?? []), k])
    }
    return byHeight
  }

  it('makes the same node as the library for keys of one height (example_keys.txt)', async () => {
    const groups = [...(await grouped()).values()].filter((ks) => ks.length >= 2)
    expect(groups.length).toBeGreaterThanOrEqual(2)
    for (const keys of groups) {
      const values = keys.map(() => leaf)
      const subtrees = [null, ...keys.map(() => null)]
      const ours = await MSTNode.create(keys, values, subtrees)
      const theirs = await libraryCreate(keys, values, subtrees)
      expect(ours).toBeInstanceOf(MSTNode)
      expect(ours.keys).toEqual(theirs.keys)
      expect((await ours.cid()).$link).toBe((await theirs.cid()).$link)
      expect(await ours.height()).toBe(await theirs.height())
    }
  })

  it('rejects what the library rejects, with its error', async () => {
    const groups = [...(await grouped()).values()]
    const mixed = [groups[0]![0]!, groups[1]![0]!].sort()
    const cases: [string[], unknown[], unknown[]][] = [
      [mixed, mixed.map(() => leaf), [null, null, null]], // keys of two heights
      [[groups[0]![0]!], [leaf], [null]], // one subtree short
      [[groups[0]![0]!], [], [null, null]], // a value short
    ]
    for (const [keys, values, subtrees] of cases) {
      const ours = await MSTNode.create(keys, values as never, subtrees as never).catch((e: Error) => e)
      const theirs = await libraryCreate(keys, values as never, subtrees as never).catch((e: Error) => e)
      expect(ours).toBeInstanceOf(TypeError)
      expect((ours as Error).message).toBe((theirs as Error).message)
    }
  })

  it('still refuses a decoded node whose keys differ in height, and the proof that walks it', async () => {
    const groups = [...(await grouped()).values()]
    const [a, b] = [groups[0]![0]!, groups[1]![0]!].sort()
    let p = 0
    while (a[p] === b[p]) p++
    const k = (s: string) => CBOR.toBytes(new TextEncoder().encode(s))
    const bytes = CBOR.encode({ l: null, e: [{ p: 0, k: k(a), v: leaf, t: null }, { p, k: k(b.slice(p)), v: leaf, t: null }] })
    await expect(MSTNode.deserialize(bytes)).rejects.toThrow('inconsistent key heights')
    const cid = CID.toString(await CID.create(0x71, bytes))
    await expect(mstView(toBlockstore(new Map([[cid, bytes]])), cid).get(a)).rejects.toThrow(/MST lookup of .*inconsistent key heights/)
  })

  it('holds at most MEMO_LIMIT heights', async () => {
    for (let i = 0; i < MEMO_LIMIT + 10; i++) await keyHeight(`app.example.x/${i}`)
    expect(memoSize()).toBeGreaterThan(0)
    expect(memoSize()).toBeLessThanOrEqual(MEMO_LIMIT)
  })
})
