// Resync on a real dev-env PDS + PLC, with the repo's PDS behind a forwarder that can fail or hold
// getRepo: a repo that cannot be resynced stays desynchronized (visible in `status`), is retried with
// a doubling backoff and heals once its PDS answers again; events that arrive while a repo resyncs
// wait on its queue and are applied afterwards, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDb } from '../src/store/db.ts'
import { listRejections } from '../src/store/rejections.ts'
import { readStatus } from '../src/store/status.ts'
import {
  createAccounts, currentSeq, deleteRecord, startDevnet, updateRecord, writeRecord,
  MALFESTIO_NSIDS, sampleMalfestio, type Devnet,
} from './helpers/devnet.ts'
import { runCli } from './helpers/cli-process.ts'
import { captureFrames, startFakeRelay } from './helpers/fake-relay.ts'
import { startLiveMirror } from './helpers/live.ts'
import { mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'
import { pointPdsAt, startPdsProxy, until } from './helpers/pds-proxy.ts'

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

const repoRow = (dbPath: string, did: string) => {
  const db = openDb(dbPath)
  try {
    return db.prepare('SELECT state, state_reason AS reason, rev FROM repos WHERE did = ?').get(did) as { state: string; reason: string; rev: string | null } | undefined
  } finally {
    db.close()
  }
}

describe('a repo whose PDS cannot serve it', () => {
  it('stays desynchronized, shown in status, retried with a doubling backoff, and heals when the PDS answers', async () => {
    const [x] = await createAccounts(net, 1, 'stuck')
    const did = x!.did
    await writeRecord(net, did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'before the mirror' }))
    const proxy = await startPdsProxy(net.pdsUrl)
    await pointPdsAt(net, did, proxy.url)
    // the mirror meets the repo mid-stream, so it needs the whole repo (getRepo) before it can apply anything
    const from = await currentSeq(net)
    const seen = await writeRecord(net, did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'first seen' }))
    const relay = await startFakeRelay(await captureFrames(net.subscribeUrl, from))
    const dbPath = `${tmp.dir}/stuck.db`
    const backoff = 300
    proxy.mode = 'fail'
    const live = await startLiveMirror(net, dbPath, { service: relay.url, cursor: from, resyncBackoffMs: backoff })
    try {
      await live.caughtUp()
      await until('four getRepo attempts', () => proxy.getRepoRequests.length >= 4)
      // rate limit: each wait at least doubles (backoff, 2×, 4× …), however often the retry timer ticks
      const at = proxy.getRepoRequests.map((r) => r.at)
      for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(backoff * 2 ** (i - 1) * 0.8)
      expect(proxy.getRepoRequests.every((r) => r.did === did)).toBe(true)

      // visible to another process through status --json: desynchronized, with the reason. A retry
      // may be in flight at the moment status reads (state 'resyncing' for the length of one failed
      // getRepo): read again until the snapshot falls between two attempts, as an operator would
      let s: any
      for (let i = 0; ; i++) {
        const status = await runCli(['status', '--db', dbPath, '--json'])
        expect(status.code).toBe(0)
        s = JSON.parse(status.stdout)
        if (s.repos.byState.resyncing === undefined || i >= 5) break
      }
      expect(s.repos.byState.desynchronized).toBe(1)
      expect(s.repos.desynchronized).toEqual([expect.objectContaining({ did, state: 'desynchronized' })])
      expect(s.repos.desynchronized[0].reason).toMatch(/resync failed .*attempt \d+.*HTTP 502.*UpstreamFailure/)
      expect(s.counters['resync.failed']).toBeGreaterThanOrEqual(3)
      // nothing of the repo is current yet; the verified commit is kept as history
      expect(Object.keys(mirrorSnapshot(dbPath))).toEqual([])
      const db = openDb(dbPath)
      expect(db.prepare('SELECT COUNT(*) AS n FROM record_versions WHERE uri = ?').get(seen.uri)).toEqual({ n: 1 })
      db.close()

      // the PDS is back: the next retry heals the repo without any new event
      proxy.mode = 'pass'
      await until('the repo to heal', () => repoRow(dbPath, did)?.state === 'synchronized', 30_000)
      expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, [did]))
      expect(repoRow(dbPath, did)!.reason).toMatch(/^resynced \(retry\)/)
    } finally {
      await live.stop()
      await relay.close()
    }

    // the resync command, from another process: fails (exit 1, the reason in --json) while the PDS is
    // down and leaves the repo desynchronized; heals it once the PDS answers
    const added = await writeRecord(net, did, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: seen.uri }))
    // (the relay named is the failing PDS too: otherwise getRepo would fall back to a healthy upstream)
    const common = ['--db', dbPath, '--relay', proxy.url, '--plc', net.plcUrl, '--json']
    proxy.mode = 'fail'
    const failed = await runCli(['resync', '--did', did, ...common])
    expect(failed.code).toBe(1)
    expect(JSON.parse(failed.stdout).repos).toEqual([{ did, ok: false, error: expect.stringMatching(/HTTP 502/) }])
    expect(repoRow(dbPath, did)!.state).toBe('desynchronized')
    proxy.mode = 'pass'
    const healed = await runCli(['resync', '--desynchronized', ...common])
    expect(healed.code).toBe(0)
    expect(JSON.parse(healed.stdout).repos).toEqual([{ did, ok: true, rev: expect.any(String), diff: { created: 1, updated: 0, deleted: 0, unchanged: 2 } }])
    expect(mirrorSnapshot(dbPath)[added.uri]?.cid).toBe(added.cid)
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, [did]))
    await proxy.close()
  }, 180_000)
})

describe('events that arrive during a resync', () => {
  it('wait on the repo queue (cursor held below them) and are applied afterwards in seq order', async () => {
    const [y] = await createAccounts(net, 1, 'held')
    const did = y!.did
    const deck = await writeRecord(net, did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'old deck' }))
    const proxy = await startPdsProxy(net.pdsUrl)
    await pointPdsAt(net, did, proxy.url)
    proxy.mode = 'hold'
    const dbPath = `${tmp.dir}/held.db`
    const live = await startLiveMirror(net, dbPath, { cursor: await currentSeq(net) })
    try {
      // first sight mid-stream → resync; the PDS snapshot is taken now, the answer waits
      const note = await writeRecord(net, did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'trigger' }))
      const triggerSeq = await currentSeq(net)
      await until('the getRepo to be held', () => proxy.held() === 1)

      // four more commits while the resync is in progress
      const card = await writeRecord(net, did, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: deck.uri }))
      await updateRecord(net, did, MALFESTIO_NSIDS.note, note.rkey, sampleMalfestio.note({ title: 'edited while resyncing' }))
      await deleteRecord(net, did, MALFESTIO_NSIDS.deck, deck.rkey)
      const article = await writeRecord(net, did, MALFESTIO_NSIDS.article, sampleMalfestio.article())
      const last = await currentSeq(net)
      const mirror = live.mirror()
      await until('the mirror to receive every event', () => (mirror.stats().lastSeq ?? -1) >= last)

      // held: five events in flight, none applied, the durable cursor below the first of them
      expect(mirror.stats().inFlight).toBe(last - triggerSeq + 1)
      expect(mirror.cursor() ?? -1).toBeLessThan(triggerSeq)
      expect(Object.keys(mirrorSnapshot(dbPath))).toEqual([])

      proxy.release()
      await live.caughtUp()
      const expected = await pdsSnapshot(net, [did])
      expect(Object.keys(expected).sort()).toEqual([note.uri, card.uri, article.uri].sort())
      expect(mirrorSnapshot(dbPath)).toEqual(expected)

      const db = openDb(dbPath)
      const status = readStatus(db)
      expect(status.counters['resync.attempts']).toBe(1)
      expect(listRejections(db)).toEqual([]) // no chain break: each held commit followed the one before
      const commits = db.prepare(`SELECT rev, seq, source FROM commits WHERE did = ? ORDER BY rev`).all(did) as { rev: string; seq: number | null; source: string }[]
      // the resynced head (the trigger commit, at the snapshot's rev) then the four held commits in seq order
      expect(commits.map((c) => c.source)).toEqual(['resync', 'firehose', 'firehose', 'firehose', 'firehose'])
      const heldSeqs = commits.slice(1).map((c) => c.seq!)
      expect(heldSeqs).toEqual([...heldSeqs].sort((a, b) => a - b))
      expect(heldSeqs[0]).toBeGreaterThan(triggerSeq)
      const deleted = db.prepare(`SELECT action FROM record_versions WHERE uri = ? ORDER BY id`).all(deck.uri) as { action: string }[]
      expect(deleted.map((v) => v.action)).toEqual(['resync', 'delete']) // first seen in the snapshot, then deleted by a held commit
      expect(status.cursors.find((c) => c.service === net.firehoseUrl)?.seq).toBe(last)
      db.close()
    } finally {
      await live.stop()
      await proxy.close()
    }
  })
})
