/**
 * The MST nodes a live mirror keeps for a Malfestio user who also posts: against the PDS's own repo,
 * every node an in-scope record's proof needs is stored, and nodes that hold only other collections
 * are not.
 *
 * Posts appended in time order all land next to the Malfestio keys, so every node they make meets
 * the scope's key range when it is made and is kept; whether any posts-only node goes unkept then
 * rests on the key hashes (it once did not: every node was stored). One post is therefore written
 * under a chosen older TID, inside a leaf bounded by posts on both sides, which no in-scope key could
 * ever sit under: that leaf must not be kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAccounts, MALFESTIO_NSIDS as N, sampleMalfestio, startDevnet, writeRecord, type Devnet } from './helpers/devnet.ts'
import { startLiveMirror } from './helpers/live.ts'
import { tempDir } from './helpers/mirror.ts'
import { fetchRepoCar } from '../src/mirror/fetch-repo.ts'
import { verifyStore } from '../src/mirror/verify-store.ts'
import { openDb } from '../src/store/db.ts'
import { getBlock } from '../src/store/blocks.ts'
import { readVerifiedCar } from '../src/verify/car.ts'
import { parseCommitBlock } from '../src/verify/commit.ts'
import { mstView, scopeKeyRanges, toBlockstore } from '../src/verify/mst.ts'
import { inRanges, subtreeKeys } from './helpers/mst.ts'
import { keyHeight } from '../src/verify/mst-heights.ts'
import { isTid } from '../src/verify/tid.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let did: string
let firstDeckRev: string
let middleKey: string

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir('mm-scope-')
  did = (await createAccounts(net, 1, 'scope'))[0]!.did
  const live = await startLiveMirror(net, `${tmp.dir}/m.db`)
  try {
    // the first Malfestio record brings the repo into scope: the mirror resyncs it then, and from
    // there on every node reaches it through the firehose
    const deck = await writeRecord(net, did, N.deck, sampleMalfestio.deck({ title: 'before the posts' }))
    firstDeckRev = deck.commit!.rev
    await live.caughtUp()
    await resyncStored(`${tmp.dir}/m.db`, did)
    for (let i = 0; i < 3; i++) await writeRecord(net, did, N.card, sampleMalfestio.card({ deckRef: deck.uri, front: `Q${i}` }))
    // enough posts for the tree to grow levels whose nodes hold posts only
    for (let i = 0; i < 80; i++) await writeRecord(net, did, 'app.bsky.feed.post', { text: `post ${i}`, createdAt: new Date().toISOString() })
    middleKey = await keyAmongPosts(did)
    await writeRecord(net, did, 'app.bsky.feed.post', { text: 'backdated', createdAt: new Date().toISOString() }, middleKey.split('/')[1])
    await writeRecord(net, did, N.card, sampleMalfestio.card({ deckRef: deck.uri, front: 'after the posts' }))
    await writeRecord(net, did, N.note, sampleMalfestio.note({ title: 'a note' }))
    await live.caughtUp()
  } finally {
    await live.stop()
  }
}, 180_000)

const S32 = '234567abcdefghijklmnopqrstuvwxyz'
const tidToBigInt = (tid: string): bigint => [...tid].reduce((n, ch) => n * 32n + BigInt(S32.indexOf(ch)), 0n)
const tidFromBigInt = (n: bigint): string => Array.from({ length: 13 }, (_, i) => S32[Number((n >> BigInt(5 * (12 - i))) & 31n)]).join('')

/**
 * A new post key of height 0 just below a post of height >= 1 that is not the first post: it goes
 * into the leaf left of that post, whose key interval ends at a post, far from any in-scope key.
 */
async function keyAmongPosts(repo: string): Promise<string> {
  const car = readVerifiedCar(await fetchRepoCar(repo, [net.pdsUrl]))
  const root = parseCommitBlock(car.blocks.get(car.roots[0]!)!).data
  const posts = (await subtreeKeys(car.blocks, root)).get(root)!.filter((k) => k.startsWith('app.bsky.feed.post/')).sort()
  for (let i = 1; i < posts.length; i++) {
    if (keyHeight(posts[i]!) === 0) continue
    for (let n = tidToBigInt(posts[i]!.split('/')[1]!) - 1n; ; n--) {
      const key = `app.bsky.feed.post/${tidFromBigInt(n)}`
      if (key <= posts[i - 1]!) break
      if (isTid(key.split('/')[1]!) && keyHeight(key) === 0) return key
    }
  }
  throw new Error('no post of height >= 1 with room below it among 80 posts')
}

/** Waits for the repo's resync to be written: it may still run once the stream is caught up. */
async function resyncStored(dbPath: string, repo: string): Promise<void> {
  const db = openDb(dbPath, { readonly: true })
  try {
    for (const deadline = Date.now() + 20_000; ; ) {
      if (db.prepare("SELECT COUNT(*) FROM commits WHERE did = ? AND source = 'resync'").pluck().get(repo)) return
      if (Date.now() > deadline) throw new Error(`no resync of ${repo} was stored`)
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    db.close()
  }
}

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

describe('proof blocks kept for a repo with other collections', () => {
  it("every node of every Malfestio record's path is stored; some nodes of posts only are not; verify passes", async () => {
    const car = readVerifiedCar(await fetchRepoCar(did, [net.pdsUrl]))
    const root = parseCommitBlock(car.blocks.get(car.roots[0]!)!).data
    const store = toBlockstore(car.blocks)
    const ranges = scopeKeyRanges(['org.stormlightlabs.malfestio.*'])
    const inScope = (key: string) => inRanges(ranges, key)
    // every node of the PDS's tree, with the keys of its subtree
    const subtree = await subtreeKeys(car.blocks, root)
    const allKeys = subtree.get(root)!
    const scoped = allKeys.filter(inScope)
    expect(scoped.length).toBe(6)
    expect(allKeys.length).toBe(87)
    expect(allKeys).toContain(middleKey)

    const db = openDb(`${tmp.dir}/m.db`, { readonly: true })
    try {
      const view = mstView(store, root)
      for (const key of scoped) {
        for (const cid of await view.proofPath(key)) expect(getBlock(db, did, cid), `${key}: node ${cid}`).toBeDefined()
      }
      const notStored = [...subtree.keys()].filter((cid) => !getBlock(db, did, cid))
      expect(notStored.length).toBeGreaterThan(0)
      expect(notStored.filter((cid) => subtree.get(cid)!.includes(middleKey)).length, 'the leaf of the backdated post').toBeGreaterThan(0)
      // one resync, at the first deck (before any post): every post's nodes came through the firehose
      expect(db.prepare("SELECT rev FROM commits WHERE did = ? AND source = 'resync'").pluck().all(did)).toEqual([firstDeckRev])
      for (const cid of notStored) expect(subtree.get(cid)!.filter(inScope), `node ${cid}`).toEqual([])

      const report = await verifyStore(db)
      expect(report.failures).toEqual([])
      expect(report.checked.records).toBe(6)
    } finally {
      db.close()
    }
  })
})
