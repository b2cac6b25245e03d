// #account, #sync and #identity beyond the happy path, on a real dev-env PDS + PLC: an account status
// this code has never heard of, a #sync that only re-signs the data vs one that carries other data
// (and a forged and a stale one), and a handle that does not resolve back to its DID.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Secp256k1Keypair } from '@atproto/crypto'
import { fromUint8Array as readCar } from '@atcute/car'
import { BytesWrapper, decode, encode } from '@atcute/cbor'
import { create as createCid, toString as cidToString } from '@atcute/cid'
import type { AccountEvent, CommitEvent, SyncEvent } from '../src/firehose/events.ts'
import { runMirror } from '../src/mirror/run.ts'
import { getBlock } from '../src/store/blocks.ts'
import { openDb } from '../src/store/db.ts'
import { getIdentity } from '../src/store/identities.ts'
import { listRejections } from '../src/store/rejections.ts'
import { readStatus } from '../src/store/status.ts'
import {
  activate, collectFirehose, createAccounts, currentSeq, deactivate, latestCommit, rotateSigningKey, writeRecord,
  MALFESTIO_NSIDS, sampleMalfestio, type Devnet,
} from './helpers/devnet.ts'
import { startDevnet } from './helpers/devnet.ts'
import { captureFrames, eventOf, frameOf, readCarParts, startFakeRelay, writeCarParts } from './helpers/fake-relay.ts'
import { startLiveMirror } from './helpers/live.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

const withDb = <T>(dbPath: string, fn: (db: ReturnType<typeof openDb>) => T): T => {
  const db = openDb(dbPath)
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

/** Runs the mirror over `frames` served by a fake relay, resuming after `cursor`. */
async function runOver(dbPath: string, frames: Uint8Array[], cursor: number) {
  const relay = await startFakeRelay(frames)
  try {
    return await runMirror(mirrorConfig(net, dbPath, { service: relay.url, cursor, idleMs: 800 }))
  } finally {
    await relay.close()
  }
}

/** The repo's current head commit, as a #sync event would carry it (CAR whose root is the commit). */
async function headAsSync(did: string, seq: number): Promise<SyncEvent> {
  const head = await latestCommit(net, did)
  const res = await fetch(`${net.pdsUrl}/xrpc/com.atproto.sync.getBlocks?did=${did}&cids=${head.cid}`)
  // getBlocks answers a CAR without roots: read its blocks directly
  const bytes = [...readCar(new Uint8Array(await res.arrayBuffer()))].find((e) => cidToString(e.cid) === head.cid)!.bytes
  const blocks = await writeCarParts({ root: head.cid, blocks: new Map([[head.cid, bytes]]) })
  return { type: 'sync', seq, did, rev: head.rev, blocks, time: new Date().toISOString() }
}

describe('#account with a status never heard of', () => {
  it('hibernating: records hidden (kept), counted per status, commits refused; active again: shown, and the gap healed', async () => {
    const from = await currentSeq(net)
    const [h] = await createAccounts(net, 1, 'sleepy')
    const did = h!.did
    await writeRecord(net, did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'awake' }))
    await writeRecord(net, did, MALFESTIO_NSIDS.note, sampleMalfestio.note())
    const dbPath = `${tmp.dir}/hibernate.db`
    await runMirror(mirrorConfig(net, dbPath, { cursor: from, idleMs: 800 }))
    const shown = mirrorSnapshot(dbPath)
    expect(Object.keys(shown)).toHaveLength(2)

    // a relay says the account hibernates (no PDS emits this status yet), then a commit arrives
    const before = await currentSeq(net)
    const during = await writeRecord(net, did, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: Object.keys(shown)[0]! }))
    const [commitFrame] = (await captureFrames(net.subscribeUrl, before)).filter((f) => eventOf(f).type === 'commit')
    const base = 5_000_000
    const hibernate: AccountEvent = { type: 'account', seq: base + 1, did, active: false, status: 'hibernating', time: new Date().toISOString() }
    const commitDuring = { ...(eventOf(commitFrame!) as CommitEvent), seq: base + 2 }
    await runOver(dbPath, [frameOf(hibernate), frameOf(commitDuring)], base)

    expect(mirrorSnapshot(dbPath)).toEqual({})
    expect(mirrorSnapshot(dbPath, { includeHidden: true })).toEqual(shown)
    withDb(dbPath, (db) => {
      const s = readStatus(db)
      expect(s.repos.byStatus).toEqual({ hibernating: 1 })
      expect(s.records.hidden).toBe(2)
      expect(listRejections(db, { did }).map((r) => [r.seq, r.reason])).toEqual([[base + 2, 'repo-inactive']])
    })

    // active again: shown; the next commit no longer follows the head (the refused one is missing),
    // so the repo is resynced and ends equal to the PDS
    const wake: AccountEvent = { type: 'account', seq: base + 3, did, active: true, time: new Date().toISOString() }
    await runOver(dbPath, [frameOf(wake)], base + 2)
    expect(mirrorSnapshot(dbPath)).toEqual(shown)
    const before2 = await currentSeq(net)
    await writeRecord(net, did, MALFESTIO_NSIDS.article, sampleMalfestio.article())
    const [next] = (await captureFrames(net.subscribeUrl, before2)).filter((f) => eventOf(f).type === 'commit')
    await runOver(dbPath, [frameOf({ ...(eventOf(next!) as CommitEvent), seq: base + 4 })], base + 3)
    expect(mirrorSnapshot(dbPath)[during.uri]?.cid).toBe(during.cid)
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, [did]))
    withDb(dbPath, (db) => {
      expect(readStatus(db).repos.byStatus).toEqual({ active: 1 })
      expect(listRejections(db, { did }).map((r) => r.reason)).toEqual(['repo-inactive', 'chain-break'])
    })
  })
})

describe('#sync', () => {
  it('not newer: ignored; same data: only the head moves (real frames: reactivation, key rotation); other data: resync; forged: refused', async () => {
    const from = await currentSeq(net)
    const [z] = await createAccounts(net, 1, 'syncer')
    const did = z!.did
    await writeRecord(net, did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck())
    const dbPath = `${tmp.dir}/sync.db`
    await runMirror(mirrorConfig(net, dbPath, { cursor: from, idleMs: 800 }))

    // reactivation: the PDS emits #account, #identity and a #sync of the head it already announced: not newer, ignored
    const s0 = await currentSeq(net)
    await deactivate(net, did)
    await activate(net, did)
    const reactivation = await collectFirehose(net, { cursor: s0, until: (f) => f.some((x) => x.t === '#sync') })
    const reactivationSync = reactivation.find((f) => f.t === '#sync')!.body as { seq: number; rev: string }
    await runMirror(mirrorConfig(net, dbPath, { idleMs: 800 }))
    const headRev = () => withDb(dbPath, (db) => (db.prepare('SELECT rev FROM repos WHERE did = ?').get(did) as { rev: string }).rev)
    expect(headRev()).toBe(reactivationSync.rev)
    withDb(dbPath, (db) => expect(readStatus(db).counters['sync.stale']).toBe(1))

    // key rotation: #identity and a #sync of a new empty commit signed by the new key: same data, so only the head moves
    const s1 = await currentSeq(net)
    const newKey = await rotateSigningKey(net, did)
    const rotation = await collectFirehose(net, { cursor: s1, until: (f) => f.some((x) => x.t === '#sync') })
    const rotationSync = rotation.find((f) => f.t === '#sync')!.body as { seq: number; rev: string }
    await runMirror(mirrorConfig(net, dbPath, { idleMs: 800 }))
    expect(headRev()).toBe(rotationSync.rev)
    withDb(dbPath, (db) => {
      const s = readStatus(db)
      expect(s.counters['sync.advanced']).toBe(1)
      expect(s.counters['resync.attempts']).toBe(1) // only the first sight of the repo
      // the new signed head is kept, so current records stay provable from it
      const repo = db.prepare('SELECT head_cid FROM repos WHERE did = ?').get(did) as { head_cid: string }
      expect(db.prepare('SELECT seq, signing_key AS key FROM commits WHERE did = ? AND rev = ?').get(did, rotationSync.rev)).toEqual({ seq: rotationSync.seq, key: newKey })
      expect(getBlock(db, did, repo.head_cid)).toBeInstanceOf(Uint8Array)
      expect(listRejections(db, { did })).toEqual([])
    })

    // commits the mirror never sees, then a #sync carrying the new head (a real commit, signed by the PDS)
    await writeRecord(net, did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'missed 1' }))
    await writeRecord(net, did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'missed 2' }))
    const base = 6_000_000
    const newer = await headAsSync(did, base + 2)
    // the same #sync re-signed by a key the DID never had (the block gets its honest new CID)
    const parts = readCarParts(newer.blocks)
    const unsigned = decode(parts.blocks.get(parts.root)!) as Record<string, unknown>
    delete unsigned.sig
    const stranger = await Secp256k1Keypair.create()
    const forgedBytes = encode({ ...unsigned, sig: new BytesWrapper(await stranger.sign(encode(unsigned))) })
    const forgedCid = cidToString(await createCid(0x71, forgedBytes))
    const forged: SyncEvent = { ...newer, seq: base + 1, blocks: await writeCarParts({ root: forgedCid, blocks: new Map([[forgedCid, forgedBytes]]) }) }
    // and the rotation #sync again (older than the head by then)
    const old = eventOf((await captureFrames(net.subscribeUrl, rotationSync.seq - 1)).find((f) => eventOf(f).type === 'sync')!) as SyncEvent
    const replayed: SyncEvent = { ...old, seq: base + 3 }

    await runOver(dbPath, [frameOf(forged), frameOf(newer), frameOf(replayed)], base)
    withDb(dbPath, (db) => {
      const s = readStatus(db)
      expect(listRejections(db, { did }).map((r) => [r.seq, r.reason])).toEqual([[base + 1, 'bad-signature']])
      expect(s.counters['sync.resync']).toBe(1)
      expect(s.counters['sync.stale']).toBe(2)
      expect(s.counters['sync.advanced']).toBe(1)
      expect(s.counters['resync.attempts']).toBe(2)
      expect((db.prepare('SELECT rev FROM repos WHERE did = ?').get(did) as { rev: string }).rev).toBe(newer.rev)
    })
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, [did]))
  })
})

describe('#identity handles', () => {
  it('a handle that does not resolve back to the DID is stored unverified; history keeps handle, key and seq', async () => {
    const from = await currentSeq(net)
    const [u, other] = await createAccounts(net, 2, 'claim')
    await writeRecord(net, u!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck())
    const dbPath = `${tmp.dir}/handles.db`
    const live = await startLiveMirror(net, dbPath, { cursor: from })
    try {
      await live.caughtUp()
      expect(withDb(dbPath, (db) => getIdentity(db, u!.did))).toMatchObject({ handle: u!.handle, handleVerified: true })

      // the DID document now claims another account's handle, and the PDS announces an identity change
      const ctx = net.network.pds.ctx
      await net.network.plc.getClient().updateHandle(u!.did, ctx.plcRotationKey, other!.handle)
      await ctx.sequencer.sequenceIdentity(u!.did as `did:plc:${string}`, other!.handle as `${string}.test`)
      const seq = await currentSeq(net)
      await live.caughtUp()
      withDb(dbPath, (db) => {
        const id = getIdentity(db, u!.did)!
        expect(id).toMatchObject({ handle: other!.handle, handleVerified: false })
        const history = db
          .prepare('SELECT handle, handle_verified AS verified, signing_key AS key, from_seq AS fromSeq FROM identity_history WHERE did = ? ORDER BY id')
          .all(u!.did) as { handle: string; verified: number; key: string; fromSeq: number | null }[]
        expect(history.map((h) => [h.handle, h.verified])).toEqual([[u!.handle, 1], [other!.handle, 0]])
        expect(history.at(-1)).toMatchObject({ key: id.signingKey, fromSeq: seq })
        expect(readStatus(db).handles).toEqual({ verified: 0, unverified: 1 })
      })

      // its own handle again: verified again
      await net.network.plc.getClient().updateHandle(u!.did, ctx.plcRotationKey, u!.handle)
      await ctx.sequencer.sequenceIdentity(u!.did as `did:plc:${string}`, u!.handle as `${string}.test`)
      await live.caughtUp()
      expect(withDb(dbPath, (db) => getIdentity(db, u!.did))).toMatchObject({ handle: u!.handle, handleVerified: true })
    } finally {
      await live.stop()
    }
  })
})
