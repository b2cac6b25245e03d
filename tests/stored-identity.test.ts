// A mirror started again on its database takes each DID's identity from what the store proved (the
// verified PLC log's key history, key, handle, PDS) while it is young enough, instead of asking the
// directory again; a key rotated meanwhile is still found (an #identity event, or the stored key
// failing, fetches the log), and a row too old, from the directory's document, or disagreeing with it
// is fetched. Real dev-env PDS and PLC; the PLC proxy only forwards, and counts what it is asked.
import { copyFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storedIdentity } from '../src/mirror/stored-identity.ts'
import type { Mirror } from '../src/mirror/mirror.ts'
import { runMirror } from '../src/mirror/run.ts'
import { getCursor } from '../src/store/cursor.ts'
import { openDb } from '../src/store/db.ts'
import { getKeyHistory } from '../src/store/identities.ts'
import { readCounters } from '../src/store/counters.ts'
import { listRejections } from '../src/store/rejections.ts'
import { createIdentityResolver } from '../src/verify/identity.ts'
import {
  createAccounts, MALFESTIO_NSIDS, plcSigningKey, rotateSigningKey, sampleMalfestio, startDevnet, writeRecord, type Devnet, type TestAccount,
} from './helpers/devnet.ts'
import { captureFrames, eventOf, startFakeRelay } from './helpers/fake-relay.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'
import { startPlcProxy, type PlcProxy } from './helpers/plc-proxy.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let plc: PlcProxy
let accounts: TestAccount[]
let dids: string[]
let dbPath: string

const DAY = 24 * 3_600_000

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  accounts = await createAccounts(net, 3, 'stored')
  dids = accounts.map((a) => a.did)
  plc = await startPlcProxy(net.plcUrl)
  dbPath = `${tmp.dir}/restart.db`
}, 120_000)

afterAll(async () => {
  await plc?.close()
  await net?.close()
  tmp?.cleanup()
})

const deckEach = async (title: string) => {
  for (const did of dids) await writeRecord(net, did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: `${title} ${did.slice(-4)}` }))
}

/** A run on the restart database through the PLC proxy; what the resolver did, and the DIDs the directory was asked about. */
async function run(over: Parameters<typeof mirrorConfig>[2] = {}) {
  const from = plc.hits.length
  let mirror: Mirror | undefined
  const result = await runMirror(mirrorConfig(net, dbPath, { plcUrl: plc.url, idleMs: 1000, ...over }), { onMirror: (m) => (mirror = m) })
  const asked = new Set(plc.hits.slice(from).map((h) => decodeURIComponent(h.split('?')[0]!.split('/')[1] ?? '')))
  return { result, identity: mirror!.identityStats(), asked }
}

function inDb<T>(fn: (db: ReturnType<typeof openDb>) => T): T {
  const db = openDb(dbPath)
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

const fromStore = () => inDb((db) => readCounters(db)['identity.from-store'] ?? 0)

describe('a restart on the same database', () => {
  it('takes each DID from the store: the directory is not asked, every new commit is verified', async () => {
    await deckEach('first')
    const first = await run({ cursor: 0 })
    expect(first.result.stats.rejected).toBe(0)
    expect(first.identity.fetches).toBeGreaterThanOrEqual(dids.length)
    expect(first.identity.primed).toBe(0)
    for (const did of dids) expect(first.asked).toContain(did)

    await deckEach('second')
    const second = await run()
    expect(second.result.stats.verified).toBe(dids.length)
    expect(second.identity).toMatchObject({ fetches: 0, primed: dids.length, logsVerified: 0 })
    expect([...second.asked]).toEqual([])
    expect(fromStore()).toBe(dids.length)
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, dids))
    expect(inDb((db) => listRejections(db))).toEqual([])
  })

  it('what the store gives back is what the verified log gives', async () => {
    const resolver = createIdentityResolver({ plcUrl: net.plcUrl, verifyPlcLog: true })
    const kept = inDb((db) => dids.map((did) => storedIdentity(db, did, DAY)))
    for (const [i, did] of dids.entries()) {
      const fresh = await resolver.resolve(did)
      expect(kept[i]).toMatchObject({ did, signingKey: fresh.signingKey, handle: fresh.handle, pds: fresh.pds, source: 'plc-log', doc: fresh.doc })
      expect(kept[i]!.log).toEqual({ keys: fresh.log!.keys, signingKey: fresh.log!.signingKey, lastOp: { cid: fresh.log!.lastOp.cid } })
    }
  })

  it('a row too old, or --identity-max-age 0, is fetched and its log verified again', async () => {
    await deckEach('third')
    const never = await run({ identityMaxAgeMs: 0 })
    expect(never.identity.primed).toBe(0)
    expect(never.identity.logsVerified).toBeGreaterThanOrEqual(dids.length)
    for (const did of dids) expect(never.asked).toContain(did)

    const [old, ...young] = dids as [string, ...string[]]
    inDb((db) => db.prepare('UPDATE identities SET resolved_at = ? WHERE did = ?').run(new Date(Date.now() - DAY - 60_000).toISOString(), old))
    await deckEach('fourth')
    const aged = await run()
    expect(aged.identity).toMatchObject({ primed: young.length })
    expect([...aged.asked]).toEqual([old])
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, dids))
  })

  it('a key rotated while stopped, its #identity not delivered: the stored key fails, the log is fetched, the commit verifies with the new key', async () => {
    const rotor = dids[1]!
    const cursor = inDb((db) => getCursor(db, net.firehoseUrl))!
    const oldKey = inDb((db) => getKeyHistory(db, rotor)).at(-1)!.signingKey
    const newKey = await rotateSigningKey(net, rotor)
    await writeRecord(net, rotor, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'after the rotation' }))
    // a relay that lost the #identity: the #sync and the commit signed with the new key still come
    const all = await captureFrames(net.subscribeUrl, cursor)
    const frames = all.filter((f) => eventOf(f).type !== 'identity')
    expect(all.length - frames.length).toBe(1)
    const relay = await startFakeRelay(frames)
    try {
      const before = inDb((db) => readCounters(db)['identity.forced-refresh'] ?? 0)
      const r = await run({ service: relay.url, cursor })
      expect(r.result.stats.rejected).toBe(0)
      expect(r.identity.primed).toBe(1)
      expect([...r.asked]).toEqual([rotor])
      expect(inDb((db) => readCounters(db)['identity.forced-refresh'] ?? 0)).toBeGreaterThan(before)
    } finally {
      await relay.close()
    }
    expect(newKey).not.toBe(oldKey)
    expect(await plcSigningKey(net, rotor)).toBe(newKey)
    expect(inDb((db) => getKeyHistory(db, rotor)).map((k) => k.signingKey)).toEqual([oldKey, newKey])
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, dids))
    expect(inDb((db) => listRejections(db))).toEqual([])
  })

  it('a row that proves no key history, disagrees with the directory, or has its last key ended is not taken', () => {
    const did = dids[0]!
    const copy = `${tmp.dir}/rows.db`
    copyFileSync(dbPath, copy)
    const db = openDb(copy)
    try {
      const now = Date.now()
      const fresh = () => db.prepare('UPDATE identities SET resolved_at = ?, key_source = ?, doc_mismatch = NULL WHERE did = ?').run(new Date(now).toISOString(), 'plc-log', did)
      fresh()
      expect(storedIdentity(db, did, DAY, now)?.did).toBe(did)
      expect(storedIdentity(db, did, 0, now)).toBeUndefined()
      db.prepare("UPDATE identities SET key_source = 'plc-directory' WHERE did = ?").run(did)
      expect(storedIdentity(db, did, DAY, now)).toBeUndefined()
      fresh()
      db.prepare("UPDATE identities SET doc_mismatch = 'the document names another key' WHERE did = ?").run(did)
      expect(storedIdentity(db, did, DAY, now)).toBeUndefined()
      fresh()
      db.prepare('UPDATE identities SET resolved_at = ? WHERE did = ?').run(new Date(now + 60_000).toISOString(), did)
      expect(storedIdentity(db, did, DAY, now)).toBeUndefined()
      fresh()
      db.prepare("UPDATE plc_keys SET ended_by_cid = 'bafyended', ended_at = '2026-01-01T00:00:00.000Z' WHERE did = ?").run(did)
      expect(storedIdentity(db, did, DAY, now)).toBeUndefined()
      db.prepare('DELETE FROM plc_keys WHERE did = ?').run(did)
      expect(storedIdentity(db, did, DAY, now)).toBeUndefined()
    } finally {
      db.close()
    }
  })
})
