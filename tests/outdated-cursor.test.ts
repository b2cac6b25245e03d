// A cursor older than the upstream's window: a dev-env PDS that keeps only the last 2 s of events
// (PDS_REPO_BACKFILL_LIMIT_MS) answers a stale cursor with `#info OutdatedCursor` and replays from
// its window. The mirror records the info (shown by `status`), resyncs every repo in scope, finds the
// repos that entered scope inside the gap, notices a reactivation it never saw, and ends equal to
// what the PDS's listRecords serves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { readStatus } from '../src/store/status.ts'
import {
  activate, createAccounts, deactivate, deleteRecord, seedMalfestio, startDevnet, updateRecord, writeRecord,
  MALFESTIO_NSIDS, sampleMalfestio, type Devnet, type SeedSummary, type TestAccount,
} from './helpers/devnet.ts'
import { runCli } from './helpers/cli-process.ts'
import { startLiveMirror } from './helpers/live.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

const WINDOW_MS = 2_000

let net: Devnet
let tmp: ReturnType<typeof tempDir>

beforeAll(async () => {
  net = await startDevnet({ repoBackfillLimitMs: WINDOW_MS })
  tmp = tempDir()
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

describe('OutdatedCursor', () => {
  it('is recorded, shown in status, and healed by resync: the mirror equals listRecords afterwards', async () => {
    const dbPath = `${tmp.dir}/outdated.db`
    // followed live from the start, so the stored cursor is inside the window while the mirror runs
    const live = await startLiveMirror(net, dbPath, { cursor: 0 })
    let a: TestAccount, b: TestAccount, c: TestAccount
    let seed: SeedSummary
    try {
      ;[a, b, c] = (await createAccounts(net, 3, 'win')) as [TestAccount, TestAccount, TestAccount]
      seed = await seedMalfestio(net, [a, b, c])
      await deactivate(net, c.did)
      await live.caughtUp()
    } finally {
      await live.stop()
    }
    expect(Object.keys(mirrorSnapshot(dbPath, { includeHidden: true }))).toHaveLength(Object.values(seed.counts).reduce((x, y) => x + y, 0))

    // the gap: nobody mirrors while these happen, and they fall out of the PDS's window
    const aDeck = seed.ops.find((o) => o.did === a.did && o.uri.includes('.deck/'))!.uri.split('/').pop()!
    const aCard = seed.expected[a.did]![MALFESTIO_NSIDS.card]![0]!.uri.split('/').pop()!
    await updateRecord(net, a.did, MALFESTIO_NSIDS.deck, aDeck, sampleMalfestio.deck({ title: 'renamed in the gap' }))
    await deleteRecord(net, a.did, MALFESTIO_NSIDS.card, aCard)
    const aNew = await writeRecord(net, a.did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'written in the gap' }))
    await activate(net, c.did) // the #account that shows c again is lost with the gap
    const [d] = await createAccounts(net, 1, 'newcomer') // enters scope inside the gap: never seen
    await seedMalfestio(net, [d!])
    await new Promise((r) => setTimeout(r, WINDOW_MS + 500))
    const inWindow = await writeRecord(net, b.did, MALFESTIO_NSIDS.lecture, sampleMalfestio.lecture({ title: 'inside the window' }))

    const run = await runMirror(mirrorConfig(net, dbPath, { idleMs: 1500 }))
    expect(run.stats.rejected).toBe(0)

    const dids = [a.did, b.did, c.did, d!.did]
    const expected = await pdsSnapshot(net, dids)
    const got = mirrorSnapshot(dbPath)
    expect(got[aNew.uri]?.cid).toBe(aNew.cid)
    expect(got[inWindow.uri]?.cid).toBe(inWindow.cid)
    expect(got[`at://${a.did}/${MALFESTIO_NSIDS.card}/${aCard}`]).toBeUndefined()
    expect(Object.keys(got).filter((u) => u.startsWith(`at://${d!.did}/`)).length).toBeGreaterThan(0)
    expect(Object.keys(got).filter((u) => u.startsWith(`at://${c.did}/`)).length).toBeGreaterThan(0)
    expect(got).toEqual(expected)

    const db = openDb(dbPath)
    const status = readStatus(db)
    db.close()
    expect(status.info[0]).toMatchObject({ name: 'OutdatedCursor' })
    expect(status.repos.byState).toEqual({ synchronized: 4 })
    expect(status.repos.byStatus).toEqual({ active: 4 })
    expect(status.counters['outdated.discovered']).toBe(1)
    expect(status.counters['resync.reactivated']).toBe(1)

    // what a user sees
    const shown = await runCli(['status', '--db', dbPath])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/stream info {2}OutdatedCursor \(Requested cursor exceeded limit\. Possibly missing events\) at cursor \d+/)
    expect(shown.stdout).toContain('by state: synchronized=4')
  }, 120_000)
})
