// Replaying history across key rotations: `replay --from 0` on a fresh database meets commits signed by
// keys the account has rotated out since. Each must verify against the key the DID held at that point
// of the stream (from its verified PLC log), so no record or version written before a rotation is lost;
// and a commit signed with an old key after the stream has passed the rotation is still refused.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { commitKeyOrigin, getKeyHistory, keyOrigin } from '../src/store/identities.ts'
import { listRejections } from '../src/store/rejections.ts'
import {
  createAccounts, currentSeq, deleteRecord, MALFESTIO_NSIDS, plcSigningKey, rotateSigningKey, sampleMalfestio, startDevnet,
  updateHandle, updateRecord, writeRecord, type Devnet, type TestAccount,
} from './helpers/devnet.ts'
import { captureFrames, frameOf, startFakeRelay } from './helpers/fake-relay.ts'
import { forgeCommit } from './helpers/forge-commit.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

const exec = promisify(execFile)

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let rotor: TestAccount
let steady: TestAccount
/** every Malfestio write, in order: what the versions table must hold */
const written: { uri: string; action: 'create' | 'update' | 'delete'; cid: string | null; key: string }[] = []
const keys: string[] = []
const keypairs: Awaited<ReturnType<Devnet['network']['pds']['ctx']['actorStore']['keypair']>>[] = []

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  ;[rotor, steady] = (await createAccounts(net, 2, 'keyrot')) as [TestAccount, TestAccount]
  const N = MALFESTIO_NSIDS
  const put = async (did: string, collection: string, value: Record<string, unknown>, rkey?: string) => {
    const r = rkey ? await updateRecord(net, did, collection, rkey, value) : await writeRecord(net, did, collection, value)
    if (did === rotor.did) written.push({ uri: r.uri, action: rkey ? 'update' : 'create', cid: r.cid, key: keys.at(-1)! })
    return r
  }
  keys.push((await plcSigningKey(net, rotor.did))!)
  keypairs.push(await net.network.pds.ctx.actorStore.keypair(rotor.did))
  // era 0
  const deck = await put(rotor.did, N.deck, sampleMalfestio.deck({ title: 'era 0 deck' }))
  const note = await put(rotor.did, N.note, sampleMalfestio.note({ title: 'era 0 note' }))
  const card = await put(rotor.did, N.card, sampleMalfestio.card({ deckRef: deck.uri }))
  await put(steady.did, N.deck, sampleMalfestio.deck({ title: 'steady' }))
  // rotation 1, then a handle change (an #identity that moves no key)
  keys.push(await rotateSigningKey(net, rotor.did))
  keypairs.push(await net.network.pds.ctx.actorStore.keypair(rotor.did))
  await updateHandle(net, rotor.did, 'keyrot-renamed.test')
  await put(rotor.did, N.deck, sampleMalfestio.deck({ title: 'era 1 deck', cardRefs: [card.uri] }), deck.rkey)
  await put(rotor.did, N.article, sampleMalfestio.article())
  // rotation 2
  keys.push(await rotateSigningKey(net, rotor.did))
  keypairs.push(await net.network.pds.ctx.actorStore.keypair(rotor.did))
  await put(rotor.did, N.note, sampleMalfestio.note({ title: 'era 2 note' }), note.rkey)
  await deleteRecord(net, rotor.did, N.card, card.rkey)
  written.push({ uri: card.uri, action: 'delete', cid: null, key: keys.at(-1)! })
  await put(rotor.did, N.lecture, sampleMalfestio.lecture())
  await put(steady.did, N.note, sampleMalfestio.note({ title: 'steady note' }))
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

describe('replay --from 0 across two key rotations', () => {
  it('keeps every record and version written before the rotations, each verified with the key of its time', async () => {
    expect(new Set(keys).size).toBe(3)
    const dbPath = `${tmp.dir}/replay.db`
    const out = await exec(process.execPath, [
      'bin/malfestio-mirror.js', 'replay', '--from', '0', '--relay', net.firehoseUrl, '--plc', net.plcUrl, '--db', dbPath,
      '--handle-resolver', net.pdsUrl, '--idle-ms', '1500', '--json',
    ])
    expect(JSON.parse(out.stdout.trim().split('\n').at(-1)!)).toMatchObject({ rejected: 0 })

    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, [rotor.did, steady.did]))
    const db = openDb(dbPath)
    try {
      expect(listRejections(db)).toEqual([])
      // every write is a version, from the commit that made it, signed by the key of its era
      const versions = db
        .prepare(
          `SELECT v.uri, v.action, v.cid, v.signing_key AS key, c.key_op_cid AS opCid, c.rev FROM record_versions v
           JOIN commits c ON c.did = v.did AND c.rev = v.rev WHERE v.did = ? ORDER BY v.id`,
        )
        .all(rotor.did) as { uri: string; action: string; cid: string | null; key: string; opCid: string; rev: string }[]
      const have = new Set(versions.map((v) => `${v.uri} ${v.action} ${v.cid} ${v.key}`))
      for (const w of written) expect(have).toContain(`${w.uri} ${w.action} ${w.cid} ${w.key}`)

      // the key history the log proves, and each commit's key origin against it
      const history = getKeyHistory(db, rotor.did)
      expect(history.map((h) => h.signingKey)).toEqual(keys)
      for (const v of versions) {
        const origin = commitKeyOrigin(db, rotor.did, v.rev)!
        const era = keys.indexOf(v.key)
        expect(origin).toMatchObject({ signingKey: v.key, opCid: history[era]!.op.cid, inLog: true, rotatedOut: era < 2 })
      }
      expect(keyOrigin(db, rotor.did, keys[0]!)).toMatchObject({ opCid: history[0]!.op.cid, rotatedOut: true, endedBy: history[1]!.op })
      expect(keyOrigin(db, rotor.did, keys[2]!)).toMatchObject({ opCid: history[2]!.op.cid, rotatedOut: false, endedBy: null })
      expect(keyOrigin(db, rotor.did, 'did:key:zQ3shNotAKeyOfThisDid')).toBeNull()
      // the floor moved with the stream: once per rotation
      const floors = db.prepare('SELECT op_cid FROM key_floors WHERE did = ? ORDER BY seq').all(rotor.did) as { op_cid: string }[]
      expect(floors.map((f) => f.op_cid)).toEqual([history[1]!.op.cid, history[2]!.op.cid])
    } finally {
      db.close()
    }

    // replaying the same range again changes nothing (old #identity events still mark their place)
    const counts = (p: string) => {
      const d = openDb(p)
      try {
        return ['record_versions', 'commits', 'rejections', 'key_floors'].map((t) => (d.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n)
      } finally {
        d.close()
      }
    }
    const first = counts(dbPath)
    await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 800 }))
    expect(counts(dbPath)).toEqual(first)
  })

  it('a commit signed with a rotated-out key after the rotation is refused, in a replay too', async () => {
    const frames = await captureFrames(net.subscribeUrl, 0)
    const last = await currentSeq(net)
    const forgedOld = await forgeCommit(net, rotor.did, {
      collection: MALFESTIO_NSIDS.deck,
      record: sampleMalfestio.deck({ title: 'signed with the first key' }),
      signer: keypairs[0]!,
      seq: last + 1,
    })
    const forgedMiddle = await forgeCommit(net, rotor.did, {
      collection: MALFESTIO_NSIDS.deck,
      record: sampleMalfestio.deck({ title: 'signed with the second key' }),
      signer: keypairs[1]!,
      seq: last + 2,
    })
    const relay = await startFakeRelay([...frames, frameOf(forgedOld.event), frameOf(forgedMiddle.event)])
    const dbPath = `${tmp.dir}/forged.db`
    try {
      await runMirror(mirrorConfig(net, dbPath, { service: relay.url, cursor: 0, idleMs: 800 }))
    } finally {
      await relay.close()
    }
    const db = openDb(dbPath)
    const rejections = listRejections(db)
    db.close()
    expect(rejections.map((r) => [r.seq, r.reason])).toEqual([
      [last + 1, 'bad-signature'],
      [last + 2, 'bad-signature'],
    ])
    expect(rejections[0]!.message).toContain(`signed with ${keys[0]}, which PLC operation`)
    expect(rejections[0]!.message).toMatch(/rotated out; the stream passed that rotation at seq \d+/)
    expect(rejections[1]!.message).toContain(`signed with ${keys[1]}`)
    const snap = mirrorSnapshot(dbPath)
    expect(snap[forgedOld.uri]).toBeUndefined()
    expect(snap[forgedMiddle.uri]).toBeUndefined()
    expect(snap).toEqual(await pdsSnapshot(net, [rotor.did, steady.did]))
  })
})
