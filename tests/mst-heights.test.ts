// The key-height memo that src/verify/mst.ts installs into @atcute/mst, against the library's own
// `getKeyHeight`, `create` and `height()` as the oracles: the same heights, nodes, CIDs and errors.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as CBOR from '@atcute/cbor'
import * as CID from '@atcute/cid'
import { MSTNode, getKeyHeight } from '@atcute/mst'
import { toBlockstore, mstView } from '../src/verify/mst.ts'
import { MEMO_LIMIT, computeKeyHeight, keyHeight, libraryCreate, libraryHeight, memoSize } from '../src/verify/mst-heights.ts'

const fixtures = new URL('./fixtures/atproto-interop/mst/', import.meta.url)
const heightVectors: { key: string; height: number }[] = JSON.parse(readFileSync(new URL('key_heights.json', fixtures), 'utf8'))
const exampleKeys = readFileSync(new URL('example_keys.txt', fixtures), 'utf8').split('\n').filter(Boolean)
const leaf = { $link: 'bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454' }

describe('key_heights.json', () => {
  it('has vectors', () => expect(heightVectors.length).toBeGreaterThanOrEqual(9))
  for (const v of heightVectors) {
    it(`${JSON.stringify(v.key)} → ${v.height}`, async () => {
      expect(computeKeyHeight(v.key)).toBe(v.height)
      expect(keyHeight(v.key)).toBe(v.height)
      // the second read comes from the memo
      expect(keyHeight(v.key)).toBe(v.height)
    })
  }
})

describe('computeKeyHeight against the library\'s getKeyHeight', () => {
  it('agrees on example_keys.txt', async () => {
    expect(exampleKeys.length).toBeGreaterThan(100)
    for (const k of exampleKeys) expect(computeKeyHeight(k)).toBe(await getKeyHeight(k))
  })

  it('agrees on 20 000 random keys, tall ones included', async () => {
    const seen = new Set<number>()
    for (let i = 0; i < 20_000; i++) {
      // printable ASCII and some multi-byte UTF-8, so the one-call encoding is checked against the library's
      const k = `app.example.${i % 7 === 0 ? 'δοκιμή' : 'x'}/${randomBytes(9).toString('base64url')}`
      const h = await getKeyHeight(k)
      expect(computeKeyHeight(k)).toBe(h)
      seen.add(h)
    }
    // one key in 16 has height ≥ 2 and one in 64 ≥ 3: these sizes reach every branch of the count
    expect(Math.max(...seen)).toBeGreaterThanOrEqual(4)
  })
})

describe('MSTNode.create with the memo', () => {
  it('is installed by verify/mst.ts', () => {
    expect(MSTNode.create).not.toBe(libraryCreate)
    expect(MSTNode.prototype.height).not.toBe(libraryHeight)
  })

  it('gives a node the height the library\'s height() gives it (empty, keyed, and keyless inner nodes)', async () => {
    const nodes = [
      MSTNode.empty(),
      new (MSTNode as unknown as new (k: string[], v: unknown[], s: unknown[]) => MSTNode)([], [], [leaf]),
      ...(await Promise.all(exampleKeys.slice(0, 200).map((k) => MSTNode.create([k], [leaf], [null, null])))),
    ]
    const heights = new Set<number | null>()
    for (const n of nodes) {
      const ours = await n.height()
      // a fresh copy, so the library's method computes rather than reads the cache ours just filled
      const copy = Object.create(MSTNode.prototype, Object.getOwnPropertyDescriptors({ keys: n.keys, values: n.values, subtrees: n.subtrees }))
      expect(ours).toBe(await libraryHeight.call(copy))
      heights.add(ours)
    }
    expect(heights.has(0) && heights.has(null) && [...heights].some((h) => (h ?? 0) >= 1)).toBe(true)
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
    for (let i = 0; i < MEMO_LIMIT + 10; i++) keyHeight(`app.example.x/${i}`)
    expect(memoSize()).toBeGreaterThan(0)
    expect(memoSize()).toBeLessThanOrEqual(MEMO_LIMIT)
  })
})
