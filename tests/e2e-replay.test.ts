// End to end on a real PDS + PLC (@atproto/dev-env): accounts write all seven Malfestio types plus
// other collections; `replay --from 0` then equals what the PDS serves, and holds nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { readStatus } from '../src/store/status.ts'
import { activate, createAccounts, currentSeq, deactivate, seedMalfestio, startDevnet, writeRecord, MALFESTIO_NSIDS, sampleMalfestio, type Devnet, type SeedSummary } from './helpers/devnet.ts'
import { dbContent, mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let seed: SeedSummary
let dids: string[]

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  const accounts = await createAccounts(net, 3, 'e2e')
  dids = accounts.map((a) => a.did)
  seed = await seedMalfestio(net, accounts)
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

describe('replay --from 0 against a dev-env PDS', () => {
  it('mirrors exactly the Malfestio records the PDS serves', async () => {
    const dbPath = `${tmp.dir}/replay.db`
    const result = await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 1500 }))
    expect(result.stoppedBy).toBe('idle')
    expect(result.stats.rejected).toBe(0)
    const expected = await pdsSnapshot(net, dids)
    expect(Object.keys(expected).length).toBe(Object.values(seed.counts).reduce((a, b) => a + b, 0))
    for (const c of Object.values(MALFESTIO_NSIDS)) expect(seed.counts[c]).toBeGreaterThan(0)
    expect(mirrorSnapshot(dbPath)).toEqual(expected)

    const db = openDb(dbPath)
    const status = readStatus(db)
    db.close()
    expect(status.repos.byState).toEqual({ synchronized: 3 })
    expect(status.rejections.total).toBe(0)
    expect(status.cursors[0]!.seq).toBe(result.stats.lastSeq)
    expect(Object.keys(status.records.byCollection).every((c) => c.startsWith('org.stormlightlabs.malfestio.'))).toBe(true)
    expect(status.records.invalid).toBe(0)
  })

  it('resumes from the stored cursor with no duplicates, and follows new writes', async () => {
    const dbPath = `${tmp.dir}/resume.db`
    const first = await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 1000 }))
    const before = mirrorSnapshot(dbPath)
    const db0 = openDb(dbPath)
    const versions0 = readStatus(db0).versions
    db0.close()
    // a new write after the first run, then a run with no --cursor resumes from the stored cursor
    const added = await writeRecord(net, dids[0]!, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'after restart' }))
    const second = await runMirror(mirrorConfig(net, dbPath, { idleMs: 1000 }))
    expect(second.stats.received).toBe(second.stats.lastSeq! - first.stats.lastSeq!)
    expect(second.stats.duplicates).toBe(0)
    const after = mirrorSnapshot(dbPath)
    expect(Object.keys(after).length).toBe(Object.keys(before).length + 1)
    expect(after[added.uri]?.cid).toBe(added.cid)
    const db1 = openDb(dbPath)
    expect(readStatus(db1).versions).toBe(versions0 + 1)
    db1.close()
    expect(after).toEqual(await pdsSnapshot(net, dids))
  })

  it('replaying a range twice leaves the database unchanged, even after an account went inactive', async () => {
    const dbPath = `${tmp.dir}/twice.db`
    const first = await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 1000 }))
    const end = first.stats.lastSeq!
    // the account goes inactive after the range: its old commits are history, not refused commits
    await deactivate(net, dids[2]!)
    await runMirror(mirrorConfig(net, dbPath, { idleMs: 1000 }))
    const settled = dbContent(dbPath)
    expect(settled.repos.find((r: any) => r.did === dids[2])).toMatchObject({ active: 0, status: 'deactivated' })
    const db = openDb(dbPath)
    const history = () => db.prepare('SELECT COUNT(*) AS n FROM identity_history').get()
    const historyBefore = history()
    db.close()

    const again = await runMirror(mirrorConfig(net, dbPath, { cursor: 0, stopAtSeq: end, idleMs: 1000 }))
    expect(again.stats.received).toBeGreaterThan(0)
    expect(again.stats.rejected).toBe(0)
    expect(dbContent(dbPath)).toEqual(settled)
    const db2 = openDb(dbPath)
    expect(db2.prepare('SELECT COUNT(*) AS n FROM identity_history').get()).toEqual(historyBefore)
    db2.close()
    await activate(net, dids[2]!)
    expect(await currentSeq(net)).toBeGreaterThan(end)
  })
})
