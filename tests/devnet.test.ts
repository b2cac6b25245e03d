import fs from 'node:fs/promises'
import os from 'node:os'
import { decodeFirst } from '@atcute/cbor'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import {
  MALFESTIO_COLLECTIONS,
  MALFESTIO_NSIDS,
  OTHER_COLLECTION,
  XrpcError,
  activate,
  carRootCommit,
  fetchCommit,
  collectFirehose,
  createAccounts,
  currentSeq,
  deactivate,
  deleteAccount,
  deleteRecord,
  invalidMalfestio,
  latestCommit,
  listAllRecords,
  plcDocument,
  plcSigningKey,
  repoStatus,
  rotateSigningKey,
  sampleMalfestio,
  seedMalfestio,
  startDevnet,
  takedown,
  tombstoneDid,
  untakedown,
  updateHandle,
  updateRecord,
  writeRecord,
  type Devnet,
  type RawFrame,
} from './helpers/devnet.ts'

const types = (frames: RawFrame[]) => frames.map((f) => f.t)

describe('devnet harness', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startDevnet()
  })
  afterAll(async () => {
    await net?.close()
  })

  it('exposes urls of a running PDS and PLC', async () => {
    expect(net.pdsUrl).toMatch(/^http:\/\/localhost:\d+$/)
    expect(net.firehoseUrl).toBe(net.pdsUrl.replace('http', 'ws'))
    expect(net.plcUrl).toMatch(/^http:\/\/localhost:\d+$/)
    const res = await fetch(`${net.pdsUrl}/xrpc/com.atproto.server.describeServer`)
    expect(res.status).toBe(200)
    expect((await fs.stat(net.dir)).isDirectory()).toBe(true)
  })

  it('creates accounts with sessions and PLC identities', async () => {
    const accs = await createAccounts(net, 2, 'acct')
    expect(accs.map((a) => a.handle)).toEqual(['acct0.test', 'acct1.test'])
    for (const a of accs) {
      expect(a.did).toMatch(/^did:plc:[a-z2-7]{24}$/)
      expect(a.headers.authorization).toMatch(/^Bearer /)
      const doc = await plcDocument(net, a.did)
      expect(doc.alsoKnownAs).toContain(`at://${a.handle}`)
    }
    // same prefix again → distinct handles
    const again = await createAccounts(net, 1, 'acct')
    expect(again[0]!.handle).toBe('acct0a.test')
  })

  it('writes, updates, deletes and lists records', async () => {
    const [a] = await createAccounts(net, 1, 'writer')
    const deck = await writeRecord(net, a!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck())
    expect(deck.uri).toBe(`at://${a!.did}/${MALFESTIO_NSIDS.deck}/${deck.rkey}`)
    expect(deck.commit?.rev).toBeTypeOf('string')
    const card = await writeRecord(net, a!.did, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: deck.uri }))
    const upd = await updateRecord(net, a!.did, MALFESTIO_NSIDS.deck, deck.rkey, sampleMalfestio.deck({ cardRefs: [card.uri] }))
    expect(upd.uri).toBe(deck.uri)
    expect(upd.cid).not.toBe(deck.cid)
    let decks = await listAllRecords(net, a!.did, MALFESTIO_NSIDS.deck)
    expect(decks).toHaveLength(1)
    expect(decks[0]!.cid).toBe(upd.cid)
    expect(decks[0]!.value.cardRefs).toEqual([card.uri])
    await deleteRecord(net, a!.did, MALFESTIO_NSIDS.card, card.rkey)
    expect(await listAllRecords(net, a!.did, MALFESTIO_NSIDS.card)).toHaveLength(0)
    const head = await latestCommit(net, a!.did)
    expect(head.rev).toBeTypeOf('string')

    // the PDS does not know Malfestio lexicons: schema-invalid records are accepted as "unknown"
    await writeRecord(net, a!.did, MALFESTIO_NSIDS.deck, invalidMalfestio.deckMissingTitle())
    await writeRecord(net, a!.did, MALFESTIO_NSIDS.card, invalidMalfestio.cardWrongTypes())
    decks = await listAllRecords(net, a!.did, MALFESTIO_NSIDS.deck)
    expect(decks).toHaveLength(2)
    // validate: true refuses unknown lexicons; app.bsky.* records are validated
    await expect(
      writeRecord(net, a!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck(), undefined, { validate: true }),
    ).rejects.toBeInstanceOf(XrpcError)
    await expect(writeRecord(net, a!.did, 'app.bsky.feed.post', { nope: 1 })).rejects.toThrow(/Invalid/)
  })

  it('paginates listAllRecords past 100 records', async () => {
    const [a] = await createAccounts(net, 1, 'many')
    const writes = []
    for (let i = 0; i < 130; i++) writes.push({ $type: OTHER_COLLECTION, i })
    // applyWrites in chunks keeps this fast
    for (let i = 0; i < writes.length; i += 50) {
      const res = await fetch(`${net.pdsUrl}/xrpc/com.atproto.repo.applyWrites`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...a!.headers },
        body: JSON.stringify({
          repo: a!.did,
          writes: writes.slice(i, i + 50).map((value) => ({
            $type: 'com.atproto.repo.applyWrites#create',
            collection: OTHER_COLLECTION,
            value,
          })),
        }),
      })
      expect(res.status).toBe(200)
    }
    const all = await listAllRecords(net, a!.did, OTHER_COLLECTION)
    expect(all).toHaveLength(130)
    expect(new Set(all.map((r) => r.uri)).size).toBe(130)
  })

  it('seeds a realistic Malfestio mix', async () => {
    const accs = await createAccounts(net, 3, 'seed')
    const t0 = Date.now()
    const summary = await seedMalfestio(net, accs)
    const ms = Date.now() - t0
    expect(summary.created).toBeGreaterThan(0)
    expect(summary.updated).toBe(3 * 3) // deck refs, note edit, deck after card delete
    expect(summary.deleted).toBe(3 * 2)
    expect(summary.counts).toEqual({
      [MALFESTIO_NSIDS.deck]: 3,
      [MALFESTIO_NSIDS.card]: 6,
      [MALFESTIO_NSIDS.note]: 3,
      [MALFESTIO_NSIDS.collection]: 3,
      [MALFESTIO_NSIDS.article]: 3,
      [MALFESTIO_NSIDS.lecture]: 3,
      [MALFESTIO_NSIDS.comment]: 6,
    })
    for (const a of accs) {
      for (const c of MALFESTIO_COLLECTIONS) {
        const listed = await listAllRecords(net, a.did, c)
        const want = summary.expected[a.did]![c]!
        expect(listed.map((r) => [r.uri, r.cid]).sort()).toEqual(want.map((r) => [r.uri, r.cid]).sort())
      }
      expect(await listAllRecords(net, a.did, 'app.bsky.feed.post')).toHaveLength(1)
      expect(await listAllRecords(net, a.did, OTHER_COLLECTION)).toHaveLength(1)
    }
    expect(summary.other).toHaveLength(6)
    // deck → cards refs are consistent
    const deck = summary.expected[accs[0]!.did]![MALFESTIO_NSIDS.deck]![0]!
    const cardUris = summary.expected[accs[0]!.did]![MALFESTIO_NSIDS.card]!.map((c) => c.uri).sort()
    expect([...(deck.value.cardRefs as string[])].sort()).toEqual(cardUris)
    console.log(`seedMalfestio: 3 accounts, ${summary.ops.length} ops in ${ms} ms`)
  })

  it('rotates the signing key via the PDS script: PLC doc changes, #identity then #sync', async () => {
    const [a] = await createAccounts(net, 1, 'rot')
    await writeRecord(net, a!.did, MALFESTIO_NSIDS.note, sampleMalfestio.note())
    const before = await plcSigningKey(net, a!.did)
    const headBefore = await latestCommit(net, a!.did)
    // (fetch it now: the PDS drops superseded commit blocks)
    const prevCommit = await fetchCommit(net, a!.did, headBefore.cid)
    const cursor = await currentSeq(net)
    const t0 = Date.now()
    const newKey = await rotateSigningKey(net, a!.did)
    const ms = Date.now() - t0
    expect(newKey).toMatch(/^did:key:zQ3s/) // K-256
    expect(newKey).not.toBe(before)
    expect(await plcSigningKey(net, a!.did)).toBe(newKey)
    const headAfter = await latestCommit(net, a!.did)
    expect(headAfter.rev > headBefore.rev).toBe(true)

    const frames = await collectFirehose(net, { cursor, until: (f) => f.some((x) => x.t === '#sync') })
    const mine = frames.filter((f) => f.body.did === a!.did || f.body.repo === a!.did)
    expect(types(mine)).toEqual(['#identity', '#sync'])
    expect(mine[0]!.body.handle).toBeUndefined()
    expect(mine[1]!.body.rev).toBe(headAfter.rev)
    expect(mine[1]!.body.blocks).toBeInstanceOf(Uint8Array)
    // the #sync commit: new rev, same data (MST root) as before, same DID
    const synced = carRootCommit(mine[1]!.body.blocks)
    expect(synced.cid).toBe(headAfter.cid)
    expect(synced.commit).toMatchObject({ did: a!.did, version: 3, rev: headAfter.rev, data: prevCommit.data })

    // later commits are signed with the new key (the firehose carries them as usual)
    const c2 = await currentSeq(net)
    await writeRecord(net, a!.did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'after rotation' }))
    const more = await collectFirehose(net, { cursor: c2, until: (f) => f.some((x) => x.t === '#commit') })
    expect(types(more)).toContain('#commit')
    console.log(`rotateSigningKey took ${ms} ms`)
  })

  it('updateHandle emits #identity with the new handle and updates PLC', async () => {
    const [a] = await createAccounts(net, 1, 'handle')
    const cursor = await currentSeq(net)
    await updateHandle(net, a!.did, 'renamed0.test')
    const doc = await plcDocument(net, a!.did)
    expect(doc.alsoKnownAs).toContain('at://renamed0.test')
    const frames = await collectFirehose(net, { cursor, until: (f) => f.some((x) => x.t === '#identity') })
    const id = frames.find((f) => f.t === '#identity')!
    expect(id.body).toMatchObject({ did: a!.did, handle: 'renamed0.test' })
  })

  it('deactivate / activate / takedown / untakedown / delete emit #account', async () => {
    const [a, b] = await createAccounts(net, 2, 'acctev')
    const cursor = await currentSeq(net)

    await deactivate(net, a!.did)
    expect(await repoStatus(net, a!.did)).toMatchObject({ active: false, status: 'deactivated' })
    await activate(net, a!.did)
    expect(await repoStatus(net, a!.did)).toMatchObject({ active: true })
    await takedown(net, b!.did)
    expect(await repoStatus(net, b!.did)).toMatchObject({ active: false, status: 'takendown' })
    await untakedown(net, b!.did)
    expect(await repoStatus(net, b!.did)).toMatchObject({ active: true })

    const frames = await collectFirehose(net, {
      cursor,
      until: (f) => f.filter((x) => x.t === '#account').length >= 4 && f.some((x) => x.t === '#sync'),
    })
    const acc = frames
      .filter((f) => f.t === '#account')
      .map((f) => [f.body.did === a!.did ? 'a' : 'b', f.body.active, f.body.status])
    expect(acc).toEqual([
      ['a', false, 'deactivated'],
      ['a', true, undefined],
      ['b', false, 'takendown'],
      ['b', true, undefined],
    ])
    // activation also re-announces identity and sync
    const aTypes = types(frames.filter((f) => f.body.did === a!.did))
    expect(aTypes).toEqual(['#account', '#account', '#identity', '#sync'])

    const c2 = await currentSeq(net)
    await deleteAccount(net, b!.did)
    const del = await collectFirehose(net, { cursor: c2, until: (f) => f.some((x) => x.t === '#account') })
    expect(del.find((f) => f.t === '#account')!.body).toMatchObject({ did: b!.did, active: false, status: 'deleted' })
  })

  it('tombstones a DID in the dev PLC', async () => {
    const [a] = await createAccounts(net, 1, 'tomb')
    await tombstoneDid(net, a!.did)
    const res = await fetch(`${net.plcUrl}/${a!.did}`)
    expect(res.status).toBe(404)
    expect(await res.text()).toMatch(/not available/)
  })
})

describe('devnet options', () => {
  it('removes its data folder on close', async () => {
    const net = await startDevnet()
    const dir = net.dir
    await createAccounts(net, 1, 'tmp')
    const inside = await fs.readdir(dir)
    expect(inside).toContain('data')
    // dev-env's own default data folder (created even when one is configured) lands here too
    expect(inside.some((n) => /^[a-z2-7]{13}$/.test(n))).toBe(true)
    expect(os.tmpdir()).not.toBe(dir) // TMPDIR restored
    await net.close()
    await expect(fs.stat(dir)).rejects.toThrow()
    await net.close() // idempotent
  })

  it('repoBackfillLimitMs makes an old cursor OutdatedCursor', async () => {
    const net = await startDevnet({ repoBackfillLimitMs: 500 })
    try {
      expect(net.network.pds.ctx.cfg.subscription.repoBackfillLimitMs).toBe(500)
      const [a] = await createAccounts(net, 1, 'old')
      await new Promise((r) => setTimeout(r, 700))
      const fresh = await writeRecord(net, a!.did, MALFESTIO_NSIDS.note, sampleMalfestio.note())
      const frames = await collectFirehose(net, {
        cursor: 0,
        until: (f) => f.some((x) => x.t === '#commit'),
      })
      expect(frames[0]).toMatchObject({ op: 1, t: '#info', body: { name: 'OutdatedCursor' } })
      const commits = frames.filter((f) => f.t === '#commit')
      expect(commits).toHaveLength(1)
      expect(commits[0]!.body.rev).toBe(fresh.commit!.rev)
    } finally {
      await net.close()
    }
  })

  it('maxSubscriptionBuffer + a stalled reader produces ConsumerTooSlow', async () => {
    const net = await startDevnet({ maxSubscriptionBuffer: 5 })
    try {
      const [a] = await createAccounts(net, 1, 'slow')
      const ws = new WebSocket(net.subscribeUrl)
      await new Promise((r) => ws.once('open', r))
      const frames: { op: number; error?: string }[] = []
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      )
      ws.on('message', (d: Buffer) => {
        const [h, rest] = decodeFirst(new Uint8Array(d))
        frames.push({ op: h.op, error: h.op === -1 ? decodeFirst(rest)[0].error : undefined })
      })
      // stop reading: the kernel buffers fill (a few MB on loopback), then the PDS's per-subscriber
      // buffer (5 events) overflows. Observed here: ~20 frames (≈ 4 MB) fit in the socket buffers
      // before the PDS gives up; 100 × 200 kB ≈ 20 MB leaves a wide margin.
      ;(ws as any)._socket.pause()
      const big = 'x'.repeat(200_000)
      for (let n = 0; n < 100; n++) await writeRecord(net, a!.did, OTHER_COLLECTION, { big, n })
      ;(ws as any)._socket.resume()
      const close = await closed
      expect(frames.at(-1)).toEqual({ op: -1, error: 'ConsumerTooSlow' })
      expect(frames.length).toBeLessThan(100)
      expect(close).toEqual({ code: 1008, reason: 'ConsumerTooSlow' })
    } finally {
      await net.close()
    }
  })

  it('a cursor ahead of the server gets FutureCursor', async () => {
    const net = await startDevnet({ maxSubscriptionBuffer: 7 })
    try {
      expect(net.network.pds.ctx.cfg.subscription.maxBuffer).toBe(7)
      const frames = await collectFirehose(net, { cursor: 1_000_000 })
      expect(frames).toEqual([{ op: -1, t: undefined, body: expect.objectContaining({ error: 'FutureCursor' }) }])
    } finally {
      await net.close()
    }
  })
})
