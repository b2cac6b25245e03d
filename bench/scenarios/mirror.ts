/**
 * Scenario: this project's pipeline, exactly as `sync` runs it (runMirror: WebSocket client, frame
 * decoding, per-repo queues, identity, verification, SQLite batches), over the bench relay, once or
 * several times in the same process (a fresh copy of the start database each pass).
 */
import { copyFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULTS, type MirrorConfig } from '../../src/mirror/config.ts'
import { runMirror } from '../../src/mirror/run.ts'
import { secp256k1Engine, type SignatureEngine } from '../../src/verify/signature.ts'
import { childMain } from '../lib/child.ts'
import { ioWrites, maxRssMb, rssKinds, rssMb, sampleRss } from '../lib/rss.ts'

export interface MirrorScenarioInput {
  label: string
  service: string
  http: string
  /** database to start each pass from (backfilled repos); none = empty */
  template: string | null
  collections: string[]
  lastSeq: number
  passes: number
  workDir: string
  /** default: the CLI's */
  verifyThreads?: number
  /** default: the CLI's */
  maxInFlight?: number
}

export interface MirrorPass {
  elapsedSec: number
  /** CPU time of this process during the pass (all threads): a figure less sensitive to a busy machine */
  cpuSec: number
  received: number
  processed: number
  verified: number
  rejected: number
  passthrough: number
  stale: number
  held: number
  resyncs: number
  rejections: Record<string, number>
  /** wall time spent in SQLite batch transactions (the main thread waits on them) */
  flushSec: number
  peakRssMb: number
  endRssMb: number
  dbMb: number
  /** bytes this process wrote during the pass (database, WAL, sockets), per verified commit; null off Linux */
  writtenKbPerCommit: number | null
  /** write() calls during the pass, per verified commit; null off Linux */
  writeCallsPerCommit: number | null
  /** DIDs whose identity was fetched (and its log verified), and taken from the start database */
  identity: { fetched: number; fromStore: number }
}

export interface MirrorScenarioResult {
  passes: MirrorPass[]
  verifyThreads: number
  secp256k1Engine: SignatureEngine
  maxRssMb: number
}

childMain<MirrorScenarioInput, MirrorScenarioResult>(async (input, progress) => {
  const rss = sampleRss()
  const passes: MirrorPass[] = []
  for (let pass = 1; pass <= input.passes; pass++) {
    const dbPath = join(input.workDir, `${input.label}-${pass}.db`)
    rmSync(dbPath, { force: true })
    if (input.template) copyFileSync(input.template, dbPath)
    const config: MirrorConfig = {
      ...DEFAULTS,
      service: input.service,
      dbPath,
      plcUrl: input.http,
      handleResolverUrl: input.http,
      collections: input.collections,
      stopAtSeq: input.lastSeq,
      verifyThreads: input.verifyThreads ?? DEFAULTS.verifyThreads,
      maxInFlight: input.maxInFlight ?? DEFAULTS.maxInFlight,
    }
    const rejections: Record<string, number> = {}
    let flushMs = 0
    rss.reset()
    const t0 = performance.now()
    const c0 = process.cpuUsage()
    const io0 = ioWrites()
    let identity = () => ({ fetched: 0, fromStore: 0 })
    const { stats } = await runMirror(config, {
      onMirror: (m) => {
        identity = () => {
          const r = m.identityStats()
          return { fetched: r.fetches, fromStore: r.primed }
        }
      },
      hooks: {
        onFlush: (ms) => {
          flushMs += ms
        },
        onCount: (name, n) => {
          if (name.startsWith('rejected.')) rejections[name.slice(9)] = (rejections[name.slice(9)] ?? 0) + n
        },
      },
      onProgress: (p) => {
        if (p.done) return
        const m = process.memoryUsage()
        const mb = (x: number) => (x / 1048576).toFixed(0)
        progress(
          `${input.label} pass ${pass}: ${p.stats.received}/${input.lastSeq} frames, ${p.eventsPerSec.toFixed(0)}/s, ` +
            `in flight ${p.stats.inFlight}, RSS ${mb(m.rss)} MB (heap ${mb(m.heapUsed)}/${mb(m.heapTotal)}, buffers ${mb(m.arrayBuffers)}, ext ${mb(m.external)}, ` +
            `anon ${rssKinds()?.anonMb.toFixed(0)}, file ${rssKinds()?.fileMb.toFixed(0)})`,
        )
      },
    })
    const elapsedSec = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(c0)
    const io1 = ioWrites()
    const perCommit = (x: number | undefined) => (io0 && io1 && x !== undefined && stats.verified ? x / stats.verified : null)
    passes.push({
      elapsedSec,
      cpuSec: (cpu.user + cpu.system) / 1e6,
      received: stats.received,
      processed: stats.processed,
      verified: stats.verified,
      rejected: stats.rejected,
      passthrough: stats.passthrough,
      stale: stats.stale,
      held: stats.held,
      resyncs: stats.resyncs,
      rejections,
      flushSec: flushMs / 1000,
      peakRssMb: rss.peakMb(),
      endRssMb: rssMb(),
      dbMb: statSync(dbPath).size / 1024 / 1024,
      writtenKbPerCommit: perCommit(io0 && io1 ? (io1.bytes - io0.bytes) / 1024 : undefined),
      writeCallsPerCommit: perCommit(io0 && io1 ? io1.calls - io0.calls : undefined),
      identity: identity(),
    })
    rmSync(dbPath, { force: true })
    rmSync(dbPath + '-wal', { force: true })
    rmSync(dbPath + '-shm', { force: true })
  }
  rss.stop()
  return { passes, maxRssMb: maxRssMb(), verifyThreads: input.verifyThreads ?? DEFAULTS.verifyThreads, secp256k1Engine }
})
