// The whole life of a repo on a real dev-env PDS + PLC: handle changes, key rotation, #sync,
// deactivation, takedown, deletion, OutdatedCursor, and backfill of records written before any
// subscription.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BytesWrapper, decode, encode } from '@atcute/cbor'
import type { CommitEvent } from '../src/firehose/events.ts'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { getIdentity } from '../src/store/identities.ts'
import { listRejections } from '../src/store/rejections.ts'
import { readStatus } from '../src/store/status.ts'
import {
  activate, createAccounts, currentSeq, deactivate, deleteAccount, rotateSigningKey, sampleMalfestio, seedMalfestio,
  startDevnet, takedown, untakedown, updateHandle, writeRecord, MALFESTIO_NSIDS, type Devnet, type TestAccount,
} from './helpers/devnet.ts'
import { captureFrames, editCommitBlock, eventOf, frameOf, readCarParts, startFakeRelay } from './helpers/fake-relay.ts'
import { startLiveMirror } from './helpers/live.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'


let net: Devnet
let tmp: ReturnType<typeof tempDir>
let accounts: TestAccount[]

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  accounts = await createAccounts(net, 4, 'life')
  await seedMalfestio(net, accounts)
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

const onlyDid = (snap: Record<string, unknown>, did: string) => Object.keys(snap).filter((u) => u.startsWith(`at://${did}/`))

describe('identity, accounts and #sync, followed live', () => {
  it('handle change, key rotation, deactivate/activate, takedown, deletion', async () => {
    const dbPath = `${tmp.dir}/live.db`
    const live = await startLiveMirror(net, dbPath, { cursor: 0 })
    try {
      await live.caughtUp()
      const [a, b, c, d] = accounts as [TestAccount, TestAccount, TestAccount, TestAccount]
      const all = accounts.map((x) => x.did)

      // #identity: a new handle, verified because it resolves back to the DID
      await updateHandle(net, a.did, 'renamed-life.test')
      await live.caughtUp()
      let db = openDb(dbPath)
      const id = getIdentity(db, a.did)!
      expect(id.handle).toBe('renamed-life.test')
      expect(id.handleVerified).toBe(true)
      const history = db.prepare('SELECT handle FROM identity_history WHERE did = ? ORDER BY id').all(a.did) as { handle: string }[]
      expect(history.map((h) => h.handle)).toContain('renamed-life.test')
      expect(history.length).toBeGreaterThanOrEqual(2)
      db.close()

      // key rotation: #identity + #sync (same data), then a commit signed by the new key is accepted
      const newKey = await rotateSigningKey(net, b.did)
      const after = await writeRecord(net, b.did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'after rotation' }))
      await live.caughtUp()
      db = openDb(dbPath)
      expect(getIdentity(db, b.did)!.signingKey).toBe(newKey)
      const row = db.prepare('SELECT signing_key FROM commits WHERE did = ? ORDER BY rev DESC LIMIT 1').get(b.did) as { signing_key: string }
      expect(row.signing_key).toBe(newKey)
      expect(readStatus(db).counters['sync.advanced'] ?? 0).toBeGreaterThanOrEqual(1)
      db.close()
      expect(mirrorSnapshot(dbPath)[after.uri]?.cid).toBe(after.cid)

      // deactivate → hidden (kept), activate → shown again
      const cUris = onlyDid(await pdsSnapshot(net, all), c.did)
      expect(cUris.length).toBeGreaterThan(0)
      await deactivate(net, c.did)
      await live.caughtUp()
      expect(onlyDid(mirrorSnapshot(dbPath), c.did)).toEqual([])
      expect(onlyDid(mirrorSnapshot(dbPath, { includeHidden: true }), c.did).sort()).toEqual(cUris.sort())
      db = openDb(dbPath)
      expect(readStatus(db).repos.byStatus.deactivated).toBe(1)
      db.close()
      await activate(net, c.did)
      await live.caughtUp()
      expect(onlyDid(mirrorSnapshot(dbPath), c.did).sort()).toEqual(cUris.sort())

      // takedown likewise
      await takedown(net, d.did)
      await live.caughtUp()
      expect(onlyDid(mirrorSnapshot(dbPath), d.did)).toEqual([])
      db = openDb(dbPath)
      expect(readStatus(db).repos.byStatus.takendown).toBe(1)
      db.close()
      await untakedown(net, d.did)
      await live.caughtUp()
      expect(onlyDid(mirrorSnapshot(dbPath), d.did).length).toBeGreaterThan(0)

      // deletion purges records and blocks; versions stay as history
      await deleteAccount(net, d.did)
      await live.caughtUp()
      expect(onlyDid(mirrorSnapshot(dbPath, { includeHidden: true }), d.did)).toEqual([])
      db = openDb(dbPath)
      // the repo keeps its id (it had blocks before the deletion); none of its blocks remain
      expect(db.prepare('SELECT COUNT(*) AS n FROM dids WHERE did = ?').get(d.did)).toEqual({ n: 1 })
      expect((db.prepare('SELECT COUNT(*) AS n FROM blocks WHERE repo = (SELECT id FROM dids WHERE did = ?)').get(d.did) as { n: number }).n).toBe(0)
      expect((db.prepare('SELECT COUNT(*) AS n FROM record_versions WHERE did = ?').get(d.did) as { n: number }).n).toBeGreaterThan(0)
      expect(readStatus(db).repos.byStatus.deleted).toBe(1)
      expect(listRejections(db)).toEqual([])
      db.close()

      // everything else equals the PDS
      const expected = await pdsSnapshot(net, [a.did, b.did, c.did])
      const got = mirrorSnapshot(dbPath)
      expect(got).toEqual(expected)
    } finally {
      await live.stop()
    }
  })

  it('after a rotation, a commit signed with the old key is refused (bad-signature)', async () => {
    const [, , , , e] = (accounts = [...accounts, ...(await createAccounts(net, 1, 'rot'))]) as TestAccount[]
    await writeRecord(net, e!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'before' }))
    const dbPath = `${tmp.dir}/rotation.db`
    await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 800 }))
    const oldKeypair = await net.network.pds.ctx.actorStore.keypair(e!.did)
    const seq = await currentSeq(net)
    await rotateSigningKey(net, e!.did)
    const honest = await writeRecord(net, e!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'after' }))
    const frames = await captureFrames(net.subscribeUrl, seq)
    const i = frames.findIndex((f) => {
      const ev = eventOf(f)
      return ev.type === 'commit' && ev.ops.some((o) => o.path.includes(honest.rkey))
    })
    const evt = eventOf(frames[i]!) as CommitEvent
    // the honest commit, re-signed with the rotated-out key (its block gets its honest new CID)
    const unsigned = decode(readCarParts(evt.blocks).blocks.get(evt.commit)!) as Record<string, unknown>
    delete unsigned.sig
    const sig = await oldKeypair.sign(encode(unsigned))
    const signedWithOld = await editCommitBlock(evt, (c) => {
      c.sig = new BytesWrapper(sig)
    })
    const relayFrames = frames.slice(0, i).concat([frameOf(signedWithOld)])
    const relay = await startFakeRelay(relayFrames)
    try {
      await runMirror(mirrorConfig(net, dbPath, { service: relay.url, cursor: seq, idleMs: 800 }))
    } finally {
      await relay.close()
    }
    const db = openDb(dbPath)
    const rej = listRejections(db, { did: e!.did })
    db.close()
    expect(rej.map((r) => [r.seq, r.reason])).toContainEqual([evt.seq, 'bad-signature'])
  })
})
