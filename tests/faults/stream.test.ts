// Faults on a long real stream: a dev-env PDS with ≥ 2 000 commits across 10 accounts, built once.
// The reference is an uninterrupted replay; each fault run must end with the same database content
// (records, every version, commits, proof blocks, repo heads, identities, rejections) and equal
// what the PDS serves:
//   - kill -9 of the real CLI at ≥ 20 random points while it replays, restarted each time (`sync`
//     without --cursor resumes from the stored cursor);
//   - a relay proxy that drops the connection every 50 frames (clean and abrupt closes), refuses
//     connections for a while and stalls once; the progress line says what is happening;
//   - a PLC directory answering 503, then hanging, then refusing connections, for 10 s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMirror, type Progress } from '../../src/mirror/run.ts'
import { openDb } from '../../src/store/db.ts'
import { getCursor } from '../../src/store/cursor.ts'
import { readCounters } from '../../src/store/counters.ts'
import { readStatus } from '../../src/store/status.ts'
import { writeBigStream, type BigStream } from '../helpers/big-stream.ts'
import { startCli, runCli } from '../helpers/cli-process.ts'
import { currentSeq, startDevnet, type Devnet } from '../helpers/devnet.ts'
import { startFaultyPlc } from '../helpers/faulty-plc.ts'
import { dbContent, mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir, type Snapshot } from '../helpers/mirror.ts'
import { startRelayProxy } from '../helpers/relay-proxy.ts'

const ACCOUNTS = 10
const COMMITS_PER_ACCOUNT = 205

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let stream: BigStream
let head: number
let expected: Snapshot
let reference: ReturnType<typeof dbContent>
let referenceVerified: number

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  const t0 = Date.now()
  stream = await writeBigStream(net, { accounts: ACCOUNTS, commitsPerAccount: COMMITS_PER_ACCOUNT })
  head = await currentSeq(net)
  console.log(`stream: ${stream.commits} commits (${stream.malfestioOps} Malfestio ops) across ${ACCOUNTS} accounts, head seq ${head}, written in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  expected = await pdsSnapshot(net, stream.dids)
  // the reference: one uninterrupted replay
  const refPath = `${tmp.dir}/reference.db`
  const t1 = Date.now()
  const result = await runMirror(mirrorConfig(net, refPath, { cursor: 0, stopAtSeq: head }))
  console.log(`reference replay: ${result.stats.verified} commits verified in ${((Date.now() - t1) / 1000).toFixed(0)} s`)
  reference = dbContent(refPath)
  referenceVerified = result.stats.verified
})

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

/** The stored cursor (kept per upstream URL: the one the mirror was pointed at) and the counters. */
function peek(dbPath: string, service = net.firehoseUrl): { cursor?: number; counters: Record<string, number> } {
  const db = openDb(dbPath, { readonly: true })
  try {
    return { cursor: getCursor(db, service), counters: readCounters(db) }
  } finally {
    db.close()
  }
}

const eventsSeen = (c: Record<string, number>) => Object.entries(c).filter(([k]) => k.startsWith('events.')).reduce((a, [, v]) => a + v, 0)

describe('a long stream, with faults', () => {
  it('the reference replay holds what the PDS serves, one version per Malfestio op', () => {
    // (every repo starts at its genesis inside the stream: no resync, so versions and ops match one to one)
    expect(stream.commits).toBeGreaterThanOrEqual(2_000)
    expect(reference.versions.length).toBe(stream.malfestioOps)
    expect(reference.rejections).toEqual([])
    expect(Object.keys(expected).length).toBe(reference.records.length)
  })

  it('kill -9 at ≥ 20 random points during a replay, restarted each time: same database as the reference', async () => {
    const dbPath = `${tmp.dir}/killed.db`
    // the CLI reaches the PDS through a proxy that records the cursor of every connection and paces the
    // frames (one per 10 ms), so that a replay lasts long enough for its kills to land all along it on
    // a fast machine as on a slow one
    const proxy = await startRelayProxy({ upstream: net.subscribeUrl, dropEvery: 0, frameDelayMs: 10 })
    const common = ['--relay', proxy.url, '--plc', net.plcUrl, '--db', dbPath, '--handle-resolver', net.pdsUrl]
    const stored = () => {
      try {
        return peek(dbPath, proxy.url)
      } catch {
        return { cursor: undefined, counters: {} } // not created yet
      }
    }
    // Kill points: one random seq in each of KILLS equal slots of the stream. A run is killed a random
    // 0–200 ms after its stored cursor passed its point (or, when an earlier run already passed it,
    // after the run stored anything at all): at startup, mid-batch, mid-resync, wherever that falls.
    const KILLS = 30
    const points = Array.from({ length: KILLS }, (_, i) => Math.floor(((i + Math.random()) * head) / KILLS))
    const kills: { cursorBefore?: number; cursorAfter?: number; command: string }[] = []
    let resumed = 0
    try {
      for (const point of points) {
        const before = stored()
        if ((before.cursor ?? -1) >= head) break
        // nothing stored yet: the same replay again; otherwise `sync` resumes from the stored cursor
        const args = before.cursor === undefined ? ['replay', '--from', '0', '--to', String(head), ...common] : ['sync', ...common]
        const connectionsBefore = proxy.connections()
        const run = startCli(args)
        let exited = false
        void run.done.then(() => (exited = true))
        const seen0 = eventsSeen(before.counters)
        const due = () => {
          const now = stored()
          return (now.cursor ?? -1) >= point && eventsSeen(now.counters) > seen0
        }
        const deadline = Date.now() + 120_000
        while (!exited && !due()) {
          if (Date.now() > deadline) throw new Error(`kill ${kills.length + 1}: the cursor did not pass ${point} in 120 s (cursor ${stored().cursor})`)
          await sleep(20)
        }
        if (exited) {
          const r = await run.done
          throw new Error(`the CLI exited on its own (code ${r.code}) before kill ${kills.length + 1}: ${r.stderr.slice(-2000)}`)
        }
        await sleep(Math.random() * 200)
        run.child.kill('SIGKILL')
        const r = await run.done
        expect(r.signal).toBe('SIGKILL')
        const after = stored()
        kills.push({ cursorBefore: before.cursor, cursorAfter: after.cursor, command: args[0]! })
        if (args[0] === 'sync' && proxy.connections() > connectionsBefore) {
          expect(proxy.cursors[connectionsBefore]).toBe(before.cursor) // resumed from the stored cursor
          resumed++
        }
        // the stored cursor never goes back
        if (before.cursor !== undefined) expect(after.cursor!).toBeGreaterThanOrEqual(before.cursor)
      }
      // the last run: `sync` without --cursor, stopped cleanly (SIGTERM) once it is connected and at the head
      const connectionsBefore = proxy.connections()
      const final = startCli(['sync', ...common])
      let finalExited = false
      void final.done.then(() => (finalExited = true))
      const deadline = Date.now() + 600_000
      while ((stored().cursor ?? -1) < head || proxy.connections() === connectionsBefore) {
        if (finalExited) throw new Error(`sync exited before reaching seq ${head}: ${(await final.done).stderr.slice(-3000)}`)
        if (Date.now() > deadline) throw new Error(`sync did not reach seq ${head} (cursor ${stored().cursor})`)
        await sleep(100)
      }
      expect(proxy.cursors[connectionsBefore]).toBe(kills.at(-1)?.cursorAfter) // resumed from the stored cursor
      final.child.kill('SIGTERM')
      const end = await final.done
      expect(end.code, end.stderr.slice(-2000)).toBe(0)
    } finally {
      await proxy.close()
    }
    const during = kills.filter((k) => (k.cursorAfter ?? -1) < head).length
    console.log(`kill -9: ${kills.length} kills (${during} before the replay reached the head seq ${head}); ${resumed} restarts resumed from the stored cursor; kill points ${points.join(' ')}; cursors after each kill: ${kills.map((k) => k.cursorAfter ?? '-').join(' ')}`)
    expect(during).toBeGreaterThanOrEqual(20)
    // spread over the replay, not all at its start
    expect(new Set(kills.map((k) => k.cursorAfter)).size).toBeGreaterThanOrEqual(8)
    expect(Math.max(...kills.map((k) => k.cursorAfter ?? -1))).toBeGreaterThan(head / 4)
    expect(resumed).toBeGreaterThanOrEqual(10)

    const got = dbContent(dbPath)
    expect(got.versions).toEqual(reference.versions) // every version once: no loss, no duplicate
    expect(got.commits).toEqual(reference.commits)
    expect(got.blocks).toEqual(reference.blocks)
    expect(got.records).toEqual(reference.records)
    expect(got.repos).toEqual(reference.repos)
    expect(got.identities).toEqual(reference.identities)
    expect(got.rejections).toEqual([])
    expect(mirrorSnapshot(dbPath)).toEqual(expected)
  })

  it('a relay that drops the connection every 50 frames, refuses connections, and stalls once: same database, progress says so', async () => {
    const dbPath = `${tmp.dir}/flaky-relay.db`
    const proxy = await startRelayProxy({ upstream: net.subscribeUrl, dropEvery: 50, refuseAfterDrops: 5, refuseMs: 4000, stallAfterDrops: 10 })
    let r
    try {
      r = await runCli(['replay', '--from', '0', '--to', String(head), '--stall-ms', '3000', '--relay', proxy.url, '--plc', net.plcUrl, '--db', dbPath, '--handle-resolver', net.pdsUrl], { timeoutMs: 600_000 })
    } finally {
      await proxy.close()
    }
    const drops = proxy.events.filter((e) => e.startsWith('drop-')).length
    console.log(`flaky relay: ${drops} drops (${proxy.events.filter((e) => e === 'drop-abrupt').length} abrupt), refused for 4 s once, stalled once; ${proxy.connections()} connections`)
    expect(r.code, r.stderr.slice(-3000)).toBe(0)
    expect(proxy.events).toContain('drop-clean')
    expect(proxy.events).toContain('drop-abrupt')
    expect(proxy.events).toContain('refuse-start')
    expect(proxy.events).toContain('refuse-end')
    expect(proxy.events).toContain('stall')
    expect(drops).toBeGreaterThanOrEqual(Math.floor(head / 50) - 1)
    // the progress line told the story
    const lines = r.stderr.split('\n')
    expect(lines.some((l) => l.startsWith('connected |'))).toBe(true)
    expect(lines.some((l) => /^reconnecting in \d+\.\d s \(closed by server \(1000 bye\)\)/.test(l))).toBe(true)
    expect(lines.some((l) => /^reconnecting in \d+\.\d s \(connection error: .*ECONNREFUSED/.test(l))).toBe(true)
    expect(lines.some((l) => /^stalled \d+ s \|/.test(l))).toBe(true)

    const got = dbContent(dbPath)
    expect(got.versions).toEqual(reference.versions)
    expect(got.commits).toEqual(reference.commits)
    expect(got.records).toEqual(reference.records)
    expect(got.repos).toEqual(reference.repos)
    expect(got.rejections).toEqual([])
    // each commit verified once however often it was re-sent
    expect(peek(dbPath).counters['commits.verified']).toBe(referenceVerified)
    expect(mirrorSnapshot(dbPath)).toEqual(expected)
  })

  it('a PLC directory down for 10 s (503, then timeouts, then refused): no rejection, events wait, then the same database', async () => {
    const dbPath = `${tmp.dir}/plc-down.db`
    const plc = await startFaultyPlc(net.plcUrl)
    await plc.setFault('503')
    const progress: Progress[] = []
    const t0 = Date.now()
    const done = runMirror(mirrorConfig(net, dbPath, { plcUrl: plc.url, cursor: 0, stopAtSeq: head }), { onProgress: (p) => progress.push(p) })
    let cursorDuring: number | undefined
    let waitingInStatus: number | undefined
    try {
      await sleep(4000)
      await plc.setFault('hang')
      await sleep(3000)
      await plc.setFault('refuse')
      await sleep(3000)
      cursorDuring = (() => {
        try {
          return peek(dbPath).cursor
        } catch {
          return undefined
        }
      })()
      const db = openDb(dbPath, { mustExist: true })
      waitingInStatus = readStatus(db).queues.depths['repos-waiting-for-identity']?.value
      db.close()
    } finally {
      await plc.setFault('pass')
    }
    const outage = Date.now() - t0
    const result = await done
    const waiting = Math.max(...progress.map((p) => p.stats.identityWaiting))
    const got = dbContent(dbPath)
    const counters = peek(dbPath).counters
    console.log(`PLC down ${(outage / 1000).toFixed(1)} s: ${plc.faulted()} requests failed, up to ${waiting} repos waiting, ${counters['identity.retries']} retries, cursor during the outage ${cursorDuring ?? '-'}`)
    expect(outage).toBeGreaterThanOrEqual(10_000)
    expect(plc.faulted()).toBeGreaterThan(0)
    expect(waiting).toBe(ACCOUNTS)
    expect(waitingInStatus).toBe(ACCOUNTS) // `status` shows the queue of repos waiting for the resolver
    // nothing was verified while no key could be had, so the cursor stayed below every in-scope commit
    const firstCommit = Math.min(...reference.commits.map((c) => (c as { seq: number | null }).seq ?? Infinity))
    expect(cursorDuring ?? -1).toBeLessThan(firstCommit)
    expect(result.stats.rejected).toBe(0)
    expect(got.rejections).toEqual([])
    expect(got.versions).toEqual(reference.versions)
    expect(got.commits).toEqual(reference.commits)
    expect(got.records).toEqual(reference.records)
    expect(mirrorSnapshot(dbPath)).toEqual(expected)
  })

  it('a slow disk: the socket is paused and the backlog waits upstream; events in flight stay within their bound', async () => {
    const dbPath = `${tmp.dir}/slow-disk.db`
    const proxy = await startRelayProxy({ upstream: net.subscribeUrl, dropEvery: 0 })
    const pause = new Int32Array(new SharedArrayBuffer(4))
    let maxInFlight = 0
    let maxBytes = 0
    let paused = 0
    try {
      const result = await runMirror(mirrorConfig(net, dbPath, { service: proxy.url, cursor: 0, stopAtSeq: head, maxInFlight: 64, maxInFlightBytes: 256 * 1024, batchSize: 50 }), {
        // every batch takes 150 ms more to write, synchronously, as a slow fsync would
        hooks: { onFlush: () => void Atomics.wait(pause, 0, 0, 150) },
        onProgress: (p) => {
          maxInFlight = Math.max(maxInFlight, p.stats.inFlight)
          maxBytes = Math.max(maxBytes, p.stats.inFlightBytes)
        },
        onMirror: (m) => {
          const t = setInterval(() => {
            const s = m.stats()
            maxInFlight = Math.max(maxInFlight, s.inFlight)
            maxBytes = Math.max(maxBytes, s.inFlightBytes)
            if (s.inFlight >= 64) paused++
          }, 20)
          t.unref()
        },
      })
      expect(result.stoppedBy).toBe('to')
    } finally {
      await proxy.close()
    }
    console.log(`slow disk: at most ${maxInFlight} events (${(maxBytes / 1024).toFixed(0)} KiB) in flight; up to ${(proxy.maxBuffered() / 1e6).toFixed(2)} MB waited in the relay for the paused socket`)
    expect(maxInFlight).toBeLessThanOrEqual(64)
    expect(maxBytes).toBeLessThanOrEqual(256 * 1024 + 5_000_000) // one event may cross the bound (it is let in, then the socket waits)
    expect(paused).toBeGreaterThan(0)
    expect(proxy.maxBuffered()).toBeGreaterThan(500_000) // the backlog stayed upstream, not in the mirror
    const got = dbContent(dbPath)
    expect(got.versions).toEqual(reference.versions)
    expect(got.records).toEqual(reference.records)
    const depths = (() => {
      const db = openDb(dbPath, { mustExist: true })
      try {
        return readStatus(db).queues
      } finally {
        db.close()
      }
    })()
    expect(depths.depths['events-in-flight']).toEqual({ value: 0, max: 64 }) // a clean stop drained them
    expect(depths.depths['bytes-in-flight']!.max).toBe(256 * 1024)
  })
})
