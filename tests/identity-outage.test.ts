// The PLC directory failing (503, reset connections, refused connections) must not turn into
// rejected commits or lost events: the repo's events wait and are retried with backoff, other repos
// keep flowing, the cursor stays below the waiting event, and once the directory answers the mirror
// equals the PDS. Only a definite answer (a tombstoned DID) is a rejection. The long outage (10 s,
// timeouts included, on a 2 000-commit stream) is in the fault suite (tests/faults/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CommitEvent } from '../src/firehose/events.ts'
import { runMirror, type Progress } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { getCursor } from '../src/store/cursor.ts'
import { listRejections } from '../src/store/rejections.ts'
import { readStatus } from '../src/store/status.ts'
import { createAccounts, seedMalfestio, startDevnet, tombstoneDid, writeRecord, MALFESTIO_NSIDS, sampleMalfestio, type Devnet, type TestAccount } from './helpers/devnet.ts'
import { captureFrames, eventOf } from './helpers/fake-relay.ts'
import { startFaultyPlc, type FaultyPlc } from './helpers/faulty-plc.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let accounts: TestAccount[]
let dids: string[]
let plc: FaultyPlc
/** seq of each DID's first commit that touches a Malfestio collection (the first event that needs its key) */
const firstInScope = new Map<string, number>()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  accounts = await createAccounts(net, 3, 'plcout')
  dids = accounts.map((a) => a.did)
  await seedMalfestio(net, accounts)
  for (const f of await captureFrames(net.subscribeUrl, 0)) {
    const e = eventOf(f)
    if (e.type === 'commit' && !firstInScope.has(e.repo) && e.ops.some((o) => o.path.startsWith('org.stormlightlabs.malfestio.'))) {
      firstInScope.set(e.repo, (e as CommitEvent).seq)
    }
  }
  plc = await startFaultyPlc(net.plcUrl)
}, 120_000)

afterAll(async () => {
  await plc?.close()
  await net?.close()
  tmp?.cleanup()
})

const fast = { identityRetryMs: 100, identityRetryMaxMs: 400 }

function peek(dbPath: string) {
  const db = openDb(dbPath)
  try {
    return { cursor: getCursor(db, net.firehoseUrl), rejections: listRejections(db), status: readStatus(db) }
  } finally {
    db.close()
  }
}

const recordsOf = (snap: Record<string, unknown>, did: string) => Object.keys(snap).filter((u) => u.startsWith(`at://${did}/`)).length

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe('identity outages', () => {
  it('one DID unresolvable (503, then reset connections): its events wait, other repos flow, nothing is rejected', async () => {
    const dbPath = `${tmp.dir}/one-did.db`
    const [flaky, ...others] = dids as [string, ...string[]]
    const expected = await pdsSnapshot(net, dids)
    await plc.setFault('503', [flaky])
    const progress: Progress[] = []
    const done = runMirror(mirrorConfig(net, dbPath, { plcUrl: plc.url, cursor: 0, idleMs: 1500, ...fast }), {
      onProgress: (p) => progress.push(p),
    })
    try {
      // the other repos land completely while the flaky one waits
      await until('the other repos to land', () => {
        const snap = mirrorSnapshot(dbPath)
        return others.every((d) => recordsOf(snap, d) === recordsOf(expected, d))
      })
      await plc.setFault('reset', [flaky])
      await sleep(1000)
      const during = peek(dbPath)
      expect(recordsOf(mirrorSnapshot(dbPath), flaky)).toBe(0)
      expect(during.rejections).toEqual([])
      expect(during.cursor).toBeLessThan(firstInScope.get(flaky)!) // never past the waiting event
      expect(progress.some((p) => p.stats.identityWaiting === 1)).toBe(true)
      expect(during.status.queues.depths['repos-waiting-for-identity']).toEqual({ value: 1, max: null }) // what `status` shows
    } finally {
      await plc.setFault('pass')
    }
    const result = await done
    expect(result.stoppedBy).toBe('idle')
    const after = peek(dbPath)
    expect(after.rejections).toEqual([])
    expect(after.status.counters['identity.waits']).toBe(1)
    expect(after.status.counters['identity.retries']).toBeGreaterThanOrEqual(3)
    expect(plc.faulted()).toBeGreaterThanOrEqual(3)
    expect(after.cursor).toBe(result.stats.lastSeq)
    expect(mirrorSnapshot(dbPath)).toEqual(expected)
  })

  it('a stop while events wait (directory refusing connections) leaves them below the cursor; the next run does them', async () => {
    const dbPath = `${tmp.dir}/stop.db`
    await plc.setFault('refuse')
    const ac = new AbortController()
    let waiting = 0
    const done = runMirror(mirrorConfig(net, dbPath, { plcUrl: plc.url, cursor: 0, ...fast }), {
      signal: ac.signal,
      onProgress: (p) => (waiting = Math.max(waiting, p.stats.identityWaiting)),
    })
    try {
      await until('repos waiting on identity', () => waiting === dids.length)
      const t0 = Date.now()
      ac.abort()
      await done
      expect(Date.now() - t0).toBeLessThan(3000) // a stop does not wait for the directory
    } finally {
      await plc.setFault('pass')
    }
    const stopped = peek(dbPath)
    const first = Math.min(...firstInScope.values())
    expect(stopped.cursor ?? -1).toBeLessThan(first)
    expect(stopped.status.records.total).toBe(0)
    expect(stopped.rejections).toEqual([])
    // the next run (no cursor given) resumes from the stored one and does the waiting events
    const again = await runMirror(mirrorConfig(net, dbPath, { plcUrl: plc.url, idleMs: 1500, ...fast }))
    expect(again.stats.rejected).toBe(0)
    expect(peek(dbPath).rejections).toEqual([])
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, dids))
  })

  it('a definite answer is a rejection: a tombstoned DID', async () => {
    const [gone] = await createAccounts(net, 1, 'plcgone')
    await writeRecord(net, gone!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'to be tombstoned' }))
    await tombstoneDid(net, gone!.did)
    const dbPath = `${tmp.dir}/tombstone.db`
    const result = await runMirror(mirrorConfig(net, dbPath, { plcUrl: plc.url, cursor: 0, idleMs: 1500, ...fast }))
    expect(result.stoppedBy).toBe('idle')
    const { rejections } = peek(dbPath)
    expect(rejections.length).toBeGreaterThanOrEqual(1)
    expect(rejections.every((r) => r.did === gone!.did && r.reason === 'did-tombstoned')).toBe(true)
    expect(rejections[0]!.message).toContain('did-tombstoned')
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, dids))
  })
})
