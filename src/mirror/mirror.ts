/**
 * The wiring: frames in (from a socket or a file), per-repo queues, verification, resync, and
 * batched SQLite writes with the cursor that covers them. Reading this file shows the system.
 *
 * Order and durability: events of one repo run strictly in seq order on that repo's queue; repos
 * run concurrently. The cursor written with a batch is the highest seq below which every event has
 * finished, so a crash never skips an event; re-delivered events are no-ops (seq or rev ≤ stored).
 */
import type { AccountEvent, CommitEvent, Frame, IdentityEvent, InfoEvent, RepoEvent, SyncEvent } from '../firehose/events.ts'
import { peekCommit, type CommitPeek, type FrameErrorCode } from '../firehose/frames.ts'
import { eventDid } from '../firehose/events.ts'
import { checkChain, type RepoHead } from '../verify/chain.ts'
import { readCommitBlock, verifyCommitSignature, type VerifiedCommit } from '../verify/commit.ts'
import { readVerifiedCar } from '../verify/car.ts'
import { verifySync, type VerifiedSync } from '../verify/sync.ts'
import { emptyTreeRoot } from '../verify/mst.ts'
import { createIdentityResolver, IdentityError, identityReason, pdsHandleResolver, type ResolvedIdentity } from '../verify/identity.ts'
import { distinctKeys, epochAtIdentityEvent, epochsInForce, KEY_TIME_SKEW_MS } from '../verify/key-history.ts'
import type { KeyEpoch, PlcOpRef } from '../verify/plc-log.ts'
import { validateRecord } from '../verify/lexicon.ts'
import { decodeRecord } from '../verify/record.ts'
import { VerificationError, type ReasonCode } from '../verify/reasons.ts'
import { verifyRepoSnapshot } from '../verify/repo.ts'
import { bumpCounters } from '../store/counters.ts'
import { advanceCursor, getCursor } from '../store/cursor.ts'
import type { Db } from '../store/db.ts'
import { addKeyFloor, getIdentity, getKeyFloors, markIdentityResolved, putIdentity, putKeyHistory, recordIdentityMode, type KeyFloorMark } from '../store/identities.ts'
import { listRecords, purgeRepo, writeCommit, writeHistory, writeSnapshot, writeSyncHead, type AcceptedOp, type RecordValue, type SnapshotDiff } from '../store/records.ts'
import { addRejection } from '../store/rejections.ts'
import { getRepo, listRepos, setRepoAccount, setRepoState, type RepoState } from '../store/repos.ts'
import { addStreamInfo } from '../store/status.ts'
import { writeQueueDepths, type QueueDepths } from '../store/queues.ts'
import { collectionMatcher, httpBase, type MirrorConfig } from './config.ts'
import { fetchRepoCar, fetchRepoStatus, INACTIVE_REPO_ERRORS, RepoFetchError, type UpstreamRepoStatus } from './fetch-repo.ts'
import { discoverRepos } from './discover.ts'
import { storedIdentity } from './stored-identity.ts'
import { createCommitVerifier } from './verify-pool.ts'

/** In-memory view of a repo, ahead of the database by the writes still pending in the batch. */
interface RepoMemo {
  did: string
  head: RepoHead | null
  headCid: string | null
  state: RepoState
  active: boolean
  status: string | null
  /** highest seq of an #account / #identity applied (replays never roll these back) */
  lastSeq: number
  nextResyncAt: number
  resyncFailures: number
}

export interface MirrorStats {
  received: number
  processed: number
  verified: number
  rejected: number
  stale: number
  duplicates: number
  passthrough: number
  unknown: number
  /** frames that did not decode (each dropped the connection, re-opened from the cursor) */
  badFrames: number
  resyncs: number
  resyncFailures: number
  held: number
  inFlight: number
  /** bytes of blocks held by the events in flight */
  inFlightBytes: number
  /** repos whose events wait for their DID to resolve (the resolver is unavailable) */
  identityWaiting: number
  /** resyncs and discovery running or queued outside any stream event (OutdatedCursor heal, retries, backfill) */
  background: number
  lastSeq: number | null
  cursor: number | null
}

/** Thrown inside a task when `stop()` asked the mirror to give up waiting; the event stays unfinished. */
class Stopping extends Error {
  constructor() {
    super('the mirror is stopping')
    this.name = 'Stopping'
  }
}

/** A fatal condition: the mirror cannot go on without losing or forging data. */
export class MirrorFatalError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MirrorFatalError'
    this.code = code
  }
}

export interface Mirror {
  /**
   * Takes an out-of-scope #commit of a repo the mirror does not track straight from the raw bytes
   * (no decode, no queue, no wait) and returns what it read; null = not such a frame (or past
   * `maxSeq`): decode it and use `handleFrame`.
   */
  passThrough(bytes: Uint8Array, maxSeq?: number): CommitPeek | null
  /** Feeds one decoded frame; resolves when the mirror can take the next (backpressure). */
  handleFrame(frame: Frame): Promise<void>
  /** Counts a frame that did not decode (it has no trustworthy seq: nothing else is recorded). */
  badFrame(code: FrameErrorCode): void
  /** Waits for every queued event, then writes the last batch. */
  drain(): Promise<void>
  /**
   * Stops waiting (for an unavailable resolver, for capacity) and leaves queued events unstarted;
   * they stay below the cursor, so the next run does them. Call before `close()` on a user stop.
   */
  stop(): void
  /** Resyncs one repo from upstream now, on its queue (backfill, the `resync` command). */
  resync(did: string, why: string): Promise<ResyncResult>
  stats(): MirrorStats
  /** counters since this mirror started (the `counters` table holds the all-time sums) */
  totals(): Record<string, number>
  /** DID resolver calls, cache hits, fetches and identities taken from the store; PLC logs verified and the CPU time they took (ms) */
  identityStats(): { calls: number; cacheHits: number; fetches: number; primed: number; logsVerified: number; logVerifyMs: number }
  /** The durable cursor (what a restart resumes from). */
  cursor(): number | undefined
  /** Where a reconnect should resume: every event up to here has finished in this run. */
  position(): number | undefined
  /** Highest seq handed in (for progress). */
  readonly service: string
  close(): Promise<void>
}

type Write = (db: Db) => void

/** What a resync did: the difference it applied, or why it could not. */
export type ResyncResult = { ok: true; rev: string; diff: SnapshotDiff } | { ok: false; error: string }

/** Observers for metrics and progress; called synchronously, must not throw. */
export interface MirrorHooks {
  /** a named counter moved (same names as the `counters` table: `commits.verified`, `rejected.<reason>`, …) */
  onCount?(name: string, n: number): void
  /** a batch was written: how long the transaction took and how many writes it held (`cursor()` is already the batch's) */
  onFlush?(ms: number, writes: number): void
}

/** Where the mirror gets what it does not get from the stream (a replay serves recorded answers). */
export interface MirrorDeps {
  /** `com.atproto.sync.getRepo` from the first of `bases` that serves it (default: over HTTP) */
  fetchRepo?: (did: string, bases: string[]) => Promise<Uint8Array>
  /** `com.atproto.sync.getRepoStatus`, likewise */
  fetchRepoStatus?: (did: string, bases: string[]) => Promise<UpstreamRepoStatus>
}

export function createMirror(db: Db, config: MirrorConfig, hooks: MirrorHooks = {}, deps: MirrorDeps = {}): Mirror {
  const fetchRepo = deps.fetchRepo ?? fetchRepoCar
  const fetchStatus = deps.fetchRepoStatus ?? fetchRepoStatus
  const service = config.service
  const inScope = collectionMatcher(config.collections)
  /** an op's `collection/rkey` path: whether its collection is mirrored (the pass-through and onCommit ask alike) */
  const pathInScope = (path: string) => inScope(path.slice(0, path.indexOf('/')))
  const verifier = createCommitVerifier({
    threads: config.verifyThreads,
    collections: config.collections,
    onThreadFailure: () => count('verify.thread-failures'),
  })
  const resolver = createIdentityResolver({
    plcUrl: config.plcUrl,
    resolveHandle: config.handleResolverUrl ? pdsHandleResolver(config.handleResolverUrl) : undefined,
    verifyPlcLog: !config.trustPlcDirectory,
  })
  db.transaction(() => recordIdentityMode(db, config.trustPlcDirectory ? 'trust-plc-directory' : 'verify-plc-log'))()
  const upstreamHttp = httpBase(service)

  const repos = new Map<string, RepoMemo>()
  // DIDs without a row (every repo enters through adopt()): passing over their commits costs no query
  const untracked = new Set<string>()
  const tails = new Map<string, Promise<void>>()
  const inflight = new Set<number>()
  /** events queued or running per repo (bounded by maxInFlightPerRepo) */
  const depth = new Map<string, number>()
  /** repos waiting for their DID to resolve */
  const identityWaiting = new Set<string>()
  let inflightBytes = 0
  let stopping = false
  /** the lowest seq left unfinished by stop(): the cursor never reaches it */
  let abandonedMin = Infinity
  const stopWaiters = new Set<() => void>()
  let pending: Write[] = []
  const counters = new Map<string, number>()
  let flushTimer: NodeJS.Timeout | null = null
  let fatal: Error | null = null
  let capacityWaiters: (() => void)[] = []

  const stored = getCursor(db, service)
  // the highest seq accepted into the pipeline: duplicates at or below it are dropped
  let lastSeq = config.cursor ?? stored ?? -1
  // the cursor the next flush may write: every event at or below it has finished
  let safeSeq: number | null = null
  let durable = stored

  const st: MirrorStats = {
    received: 0, processed: 0, verified: 0, rejected: 0, stale: 0, duplicates: 0, passthrough: 0, unknown: 0, badFrames: 0,
    resyncs: 0, resyncFailures: 0, held: 0, inFlight: 0, inFlightBytes: 0, identityWaiting: 0, background: 0, lastSeq: null, cursor: stored ?? null,
  }
  const totals = new Map<string, number>()
  const count = (name: string, n = 1) => {
    counters.set(name, (counters.get(name) ?? 0) + n)
    totals.set(name, (totals.get(name) ?? 0) + n)
    hooks.onCount?.(name, n)
  }

  // ───────────── batches ─────────────

  function flush(): void {
    if (flushTimer) {
      clearTimeout(flushTimer)
      flushTimer = null
    }
    const writes = pending
    pending = []
    const seq = safeSeq
    const deltas = new Map(counters)
    counters.clear()
    const depths = queueDepths(writes.length)
    const depthsKey = JSON.stringify(depths)
    const depthsDue = depthsKey !== lastDepths || Date.now() - lastDepthsAt >= 5_000
    if (!writes.length && seq === null && !deltas.size && !depthsDue) return
    const t0 = performance.now()
    db.transaction(() => {
      for (const w of writes) w(db)
      if (seq !== null) advanceCursor(db, service, seq)
      bumpCounters(db, deltas)
      if (depthsDue) writeQueueDepths(db, depths)
    })()
    const ms = performance.now() - t0
    if (depthsDue) {
      lastDepths = depthsKey
      lastDepthsAt = Date.now()
    }
    if (seq !== null && (durable === undefined || seq > durable)) durable = seq
    st.cursor = durable ?? null
    // after the cursor moved, so observers see the cursor this batch made durable
    hooks.onFlush?.(ms, writes.length)
  }

  let lastDepths = ''
  let lastDepthsAt = 0

  /** Every bounded queue, with its bound: what `status` shows (the last written is "last known"). */
  function queueDepths(pendingWrites: number): QueueDepths {
    let busiest = 0
    for (const n of depth.values()) if (n > busiest) busiest = n
    return {
      'events-in-flight': { value: inflight.size, max: config.maxInFlight },
      'bytes-in-flight': { value: inflightBytes, max: config.maxInFlightBytes },
      'busiest-repo-queue': { value: busiest, max: config.maxInFlightPerRepo },
      'repos-with-queued-events': { value: depth.size, max: null },
      'repos-waiting-for-identity': { value: identityWaiting.size, max: null },
      'writes-per-batch': { value: pendingWrites, max: config.batchSize },
      'resyncs-running': { value: resyncsRunning, max: config.maxConcurrentResyncs },
      'socket-paused-for-capacity': { value: capacityWaiters.length > 0 ? 1 : 0, max: 1 },
    }
  }

  function schedule(): void {
    if (pending.length >= config.batchSize) flush()
    else if (!flushTimer) flushTimer = setTimeout(() => safely(flush), config.batchMs)
  }

  const queueWrite = (w: Write) => {
    pending.push(w)
    schedule()
  }

  function safely(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      fatal ??= new MirrorFatalError('store-failed', `writing to the database failed: ${(err as Error).message}`, { cause: err })
    }
  }

  function finishSeq(seq: number, abandoned = false): void {
    inflight.delete(seq)
    if (abandoned) abandonedMin = Math.min(abandonedMin, seq)
    else st.processed++
    // every seq below the smallest still in flight (or left unfinished by stop()) is done
    let min = abandonedMin
    for (const s of inflight) if (s < min) min = s
    const candidate = min === Infinity ? lastSeq : min - 1
    if (candidate >= 0 && (safeSeq === null || candidate > safeSeq)) safeSeq = candidate
    schedule()
    wakeCapacityWaiters()
  }

  function wakeCapacityWaiters(): void {
    if (!capacityWaiters.length) return
    const ws = capacityWaiters
    capacityWaiters = []
    for (const w of ws) w()
  }

  /** Sleeps `ms`, or less when stop() is called (then throws Stopping). */
  async function pause(ms: number): Promise<void> {
    if (stopping) throw new Stopping()
    let wake!: () => void
    const woke = new Promise<void>((r) => (wake = r))
    stopWaiters.add(wake)
    const timer = setTimeout(wake, ms)
    try {
      await woke
    } finally {
      clearTimeout(timer)
      stopWaiters.delete(wake)
    }
    if (stopping) throw new Stopping()
  }

  // ───────────── repo state ─────────────

  function memo(did: string): RepoMemo | undefined {
    let m = repos.get(did)
    if (m) return m
    if (untracked.has(did)) return undefined
    const row = getRepo(db, did)
    if (!row) {
      if (untracked.size >= UNTRACKED_MAX) untracked.clear()
      untracked.add(did)
      return undefined
    }
    const id = getIdentity(db, did)
    m = {
      did,
      head: row.rev && row.dataCid ? { rev: row.rev, dataCid: row.dataCid } : null,
      headCid: row.headCid,
      state: row.state === 'resyncing' ? 'desynchronized' : row.state,
      active: row.active,
      status: row.status,
      lastSeq: Math.max(row.lastSeq ?? -1, id?.lastSeq ?? -1),
      nextResyncAt: 0,
      resyncFailures: 0,
    }
    repos.set(did, m)
    return m
  }

  function track(did: string): RepoMemo {
    return adopt(newRepo(did))
  }

  /** A repo met for the first time: not remembered (memory, `repos` table) until it proves out. */
  function newRepo(did: string): RepoMemo {
    return {
      did, head: null, headCid: null, state: 'desynchronized', active: true, status: null,
      lastSeq: -1, nextResyncAt: 0, resyncFailures: 0,
    }
  }

  function adopt(m: RepoMemo): RepoMemo {
    untracked.delete(m.did)
    repos.set(m.did, m)
    queueWrite((d) => setRepoState(d, m.did, 'desynchronized', 'first sight'))
    return m
  }

  function reject(evt: { seq: number; did: string; rev?: string }, reason: ReasonCode, message: string): void {
    st.rejected++
    count(`rejected.${reason}`)
    // messages and revs quote the stream, which may send megabytes where a few characters belong
    const row = { seq: evt.seq, did: clip(evt.did, 2048), reason, message: clip(message, 2048), rev: evt.rev === undefined ? null : clip(evt.rev, 64) }
    queueWrite((d) => addRejection(d, row))
  }

  // ───────────── identity ─────────────

  /**
   * Resolves the DID. While the resolver is unavailable (timeouts, 5xx, refused connections) it waits
   * and tries again with backoff and jitter, for as long as it takes: the repo's queue waits with it,
   * so its later events stay in order and the cursor stays below the waiting event. Only a definite
   * answer (not found, tombstoned, no key) throws an IdentityError.
   */
  async function identityOf(did: string, force: boolean, seq: number | null): Promise<ResolvedIdentity> {
    let delay = config.identityRetryMs
    try {
      for (;;) {
        try {
          return await resolveOnce(did, force, seq)
        } catch (err) {
          if (!(err instanceof IdentityError) || !err.transient) throw err
          if (!identityWaiting.has(did)) {
            identityWaiting.add(did)
            st.identityWaiting = identityWaiting.size
            count('identity.waits')
          }
          count('identity.retries')
          await pause(Math.round(delay * (0.75 + Math.random() * 0.5)))
          delay = Math.min(delay * 2, config.identityRetryMaxMs)
        }
      }
    } finally {
      if (identityWaiting.delete(did)) st.identityWaiting = identityWaiting.size
    }
  }

  // resolutions already compared with the stored row: a cache hit returns the same object, and
  // re-reading the row (with its document) for every commit cost more than the rest of identity
  const recorded = new WeakSet<ResolvedIdentity>()

  async function resolveOnce(did: string, force: boolean, seq: number | null): Promise<ResolvedIdentity> {
    if (!force && !resolver.peek(did)) {
      // a DID met for the first time since the start: what the store proved, while it is young enough
      const stored = storedIdentity(db, did, config.identityMaxAgeMs)
      if (stored && resolver.prime(stored)) {
        recorded.add(stored) // it is the row: nothing to compare or write
        count('identity.from-store')
      }
    }
    const id = await resolver.resolve(did, { force })
    count('identity.resolved')
    if (!force && recorded.has(id)) return id
    recorded.add(id)
    const prev = getIdentity(db, did)
    const lastOp = id.log?.lastOp.cid ?? null
    const mismatch = id.mismatch?.message ?? null
    const changed =
      !prev || prev.signingKey !== id.signingKey || prev.pds !== (id.pds ?? null) || prev.handle !== (id.handle ?? null) ||
      prev.keySource !== id.source || prev.plcLastOp !== lastOp || prev.docMismatch !== mismatch
    if (changed || force) {
      // a handle counts only when it resolves back to this DID (DNS TXT or https well-known)
      const handleVerified = id.handle ? await resolver.verifyHandle(did, id.handle).catch(() => false) : false
      const row = {
        did, handle: id.handle ?? null, handleVerified, signingKey: id.signingKey, pds: id.pds ?? null, doc: id.doc,
        keySource: id.source, plcLastOp: lastOp, docMismatch: mismatch,
      }
      queueWrite((d) => putIdentity(d, row, seq))
      if (id.log && prev?.plcLastOp !== lastOp) {
        const keys = id.log.keys
        queueWrite((d) => putKeyHistory(d, did, keys))
      }
      if (mismatch && prev?.docMismatch !== mismatch) count('identity.plc-doc-mismatch')
    } else {
      // fetched and found as stored: the row is proven as of this fetch (its age counts from here)
      const at = new Date(id.resolvedAt).toISOString()
      queueWrite((d) => markIdentityResolved(d, did, at))
    }
    return id
  }

  // ───────────── keys across rotations (verified PLC logs) ─────────────

  // Per DID, the stream positions from which older keys are refused (see verify/key-history.ts).
  const floorMarks = new Map<string, KeyFloorMark[]>()

  function marksOf(did: string): KeyFloorMark[] {
    let marks = floorMarks.get(did)
    if (!marks) {
      marks = getKeyFloors(db, did, service)
      floorMarks.set(did, marks)
    }
    return marks
  }

  /** The key floor in force for an event at `seq`: the highest epoch a mark at or before it names. */
  function floorAt(did: string, seq: number, keys: readonly KeyEpoch[]): { index: number; mark?: KeyFloorMark } {
    let best: { index: number; mark?: KeyFloorMark } = { index: 0 }
    for (const mark of marksOf(did)) {
      if (mark.seq > seq) continue
      const e = keys.find((k) => k.op.cid === mark.opCid)
      if (e && e.index > best.index) best = { index: e.index, mark }
    }
    return best
  }

  /** From `seq` on, keys older than `epoch` are refused for this DID (no-op if the floor is higher). */
  function raiseFloor(did: string, seq: number, epoch: KeyEpoch, keys: readonly KeyEpoch[], cause: string): void {
    if (epoch.index <= floorAt(did, seq, keys).index) return
    const mark = { seq, opCid: epoch.op.cid, cause }
    marksOf(did).push(mark)
    count('identity.key-floor-raised')
    queueWrite((d) => addKeyFloor(d, did, service, mark))
  }

  /**
   * Finds the key of the DID's verified log that `attempt` succeeds with, among those allowed for an
   * event at (seq, time); on failure re-verifies the log once (a rotation not seen yet), then explains
   * the refusal: a key the stream has rotated past, a key outside its period, the directory's
   * unbacked key (plc-doc-mismatch), or no key at all.
   */
  async function withLogKey<T>(
    ev: { seq: number; did: string; time: string },
    id: ResolvedIdentity,
    attempt: (key: string) => Promise<T>,
    signedBytes: () => Uint8Array,
  ): Promise<{ result: T; origin: PlcOpRef }> {
    let current = id
    for (let round = 0; ; round++) {
      const keys = current.log!.keys
      const floor = floorAt(ev.did, ev.seq, keys)
      for (const epoch of distinctKeys(epochsInForce(keys, floor.index, ev.time))) {
        try {
          const result = await attempt(epoch.signingKey)
          raiseFloor(ev.did, ev.seq, epoch, keys, `seq ${ev.seq} verified with the key of op ${epoch.op.cid}`)
          return { result, origin: epoch.op }
        } catch (err) {
          if (!(err instanceof VerificationError) || err.reason !== 'bad-signature') throw err
        }
      }
      if (round === 0) {
        count('identity.forced-refresh')
        const fresh = await identityOf(ev.did, true, ev.seq)
        const moved = fresh.log?.lastOp.cid !== current.log!.lastOp.cid
        current = fresh
        if (moved && current.log) continue
      }
      if (!current.log) throw new VerificationError('bad-signature', 'the signature does not verify and the DID has no verified PLC log')
      throw explainRefusal(ev, current, floorAt(ev.did, ev.seq, current.log.keys), signedBytes())
    }
  }

  function explainRefusal(ev: { seq: number; time: string }, id: ResolvedIdentity, floor: { index: number; mark?: KeyFloorMark }, bytes: Uint8Array): VerificationError {
    const log = id.log!
    const signs = (key: string) => {
      try {
        verifyCommitSignature(bytes, key)
        return true
      } catch {
        return false
      }
    }
    const signer = [...log.keys].reverse().find((e) => signs(e.signingKey))
    if (signer && signer.index < floor.index) {
      const by = signer.endedBy ? `PLC operation ${signer.endedBy.cid} (${signer.endedBy.createdAt})` : 'a later operation'
      return new VerificationError(
        'bad-signature',
        `signed with ${signer.signingKey}, which ${by} rotated out; the stream passed that rotation at seq ${floor.mark?.seq} (${floor.mark?.cause})`,
      )
    }
    if (signer) {
      return new VerificationError(
        'bad-signature',
        `signed with ${signer.signingKey}, the DID's key from ${signer.op.createdAt} to ${signer.endedBy?.createdAt ?? 'now'} per its PLC log, but the event time ${ev.time} is outside that period (±${KEY_TIME_SKEW_MS / 60_000} min)`,
      )
    }
    const served = id.mismatch?.served.signingKey
    if (served && signs(served)) {
      return new VerificationError(
        'plc-doc-mismatch',
        `signed with ${served}, the key the PLC directory's document names; the DID's verified operation log (last op ${log.lastOp.cid}) names ${log.signingKey}`,
      )
    }
    return new VerificationError('bad-signature', `the signature verifies with no key in the DID's verified PLC log (current key ${log.signingKey})`)
  }

  /** Verifies a #commit with the key the DID's identity allows at that point; returns the key's origin. */
  async function verifyAuthored(evt: CommitEvent, id: ResolvedIdentity): Promise<{ verified: VerifiedCommit; origin: PlcOpRef | null }> {
    if (id.log) {
      const { result, origin } = await withLogKey(
        { seq: evt.seq, did: evt.repo, time: evt.time },
        id,
        (key) => verifyOnce(evt, key),
        () => readCommitBlock(evt).commitBytes,
      )
      return { verified: result, origin }
    }
    // did:web, or --trust-plc-directory: the document's key; the key may have rotated, so refresh once
    try {
      return { verified: await verifyOnce(evt, id.signingKey), origin: null }
    } catch (err) {
      if (!(err instanceof VerificationError) || err.reason !== 'bad-signature') throw err
      count('identity.forced-refresh')
      const fresh = await identityOf(evt.repo, true, evt.seq)
      if (fresh.signingKey === id.signingKey && !fresh.log) throw err
      if (fresh.log) return verifyAuthored(evt, fresh)
      return { verified: await verifyOnce(evt, fresh.signingKey), origin: null }
    }
  }

  // ───────────── events ─────────────

  async function onCommit(evt: CommitEvent): Promise<void> {
    const did = evt.repo
    let m = memo(did)
    // a commit that names a DID never seen is adopted only once it proves out: a stream of forged
    // commits for made-up DIDs leaves rejections, not repos to track and retry forever
    let unknownRepo = false
    if (!m) {
      if (!evt.ops.some((op) => pathInScope(op.path))) {
        st.passthrough++
        count('frames.passthrough')
        return
      }
      m = newRepo(did)
      unknownRepo = true
    }
    if (!m.active) {
      // a commit the mirror already holds (a replay of the range) was fine when it was made: the
      // account going inactive later makes it no more refused than any other stale event
      if (m.head && evt.rev <= m.head.rev) {
        st.stale++
        count('commits.stale')
        return
      }
      reject({ seq: evt.seq, did, rev: evt.rev }, 'repo-inactive', `account is ${m.status ?? 'inactive'}: commit not applied`)
      return
    }
    const ref = { seq: evt.seq, did, rev: evt.rev }
    let verified: VerifiedCommit
    let keyOrigin: PlcOpRef | null
    try {
      const id = await identityOf(did, false, null)
      ;({ verified, origin: keyOrigin } = await verifyAuthored(evt, id))
    } catch (err) {
      if (err instanceof VerificationError) return reject(ref, err.reason, err.message)
      if (err instanceof IdentityError) return reject(ref, identityReason(err), err.message)
      throw err
    }
    origins.set(verified, keyOrigin)
    st.verified++
    count('commits.verified')
    if (unknownRepo) adopt(m)

    if (m.state !== 'synchronized') {
      // first sight or a known gap: a genesis commit starts the chain, anything else needs the repo
      if (!m.head && evt.since === null && (await chainStartsHere(verified))) return applyCommit(m, verified)
      await resyncNow(m, m.head ? 'desynchronized' : 'first sight')
    }
    for (let attempt = 0; ; attempt++) {
      if (m.state !== 'synchronized') {
        // cannot be placed in the chain until a resync succeeds; still proven, so its history is kept
        count('commits.skipped-desynchronized')
        st.held++
        return keepHistory(verified)
      }
      const verdict = checkChain(m.head, verified)
      switch (verdict.kind) {
        case 'stale':
          // older than the head (a replay, or covered by a resync): proven, so keep its history
          st.stale++
          count('commits.stale')
          return keepHistory(verified)
        case 'future':
          return reject({ seq: evt.seq, did, rev: evt.rev }, 'future-rev', verdict.message)
        case 'apply':
          return applyCommit(m, verified)
        case 'break':
          if (attempt > 0) return keepHistory(verified)
          reject({ seq: evt.seq, did, rev: evt.rev }, 'chain-break', verdict.message)
          markDesync(m, verdict.message)
          await resyncNow(m, 'chain break')
      }
    }
  }

  /** A genesis commit (since null) inverts to the empty tree: the chain starts here, nothing is missed. */
  async function chainStartsHere(c: VerifiedCommit): Promise<boolean> {
    return c.since === null && (c.prevData === null || c.prevData === (await emptyTreeRoot()))
  }

  async function verifyOnce(evt: CommitEvent, key: string): Promise<VerifiedCommit> {
    return verifier.verify(evt, key)
  }

  function acceptedOps(c: VerifiedCommit): AcceptedOp[] {
    const ops: AcceptedOp[] = []
    for (const op of c.ops) {
      if (!inScope(op.collection)) continue
      ops.push({
        action: op.action,
        collection: op.collection,
        rkey: op.rkey,
        cid: op.cid,
        prev: op.prev,
        proofPath: op.proofPath,
        value: op.recordBytes ? recordValue(op.collection, op.recordBytes) : undefined,
      })
    }
    return ops
  }

  // the PLC operation behind each verified commit's key, for the commits table (and the audit)
  const origins = new WeakMap<VerifiedCommit, PlcOpRef | null>()

  function keepHistory(c: VerifiedCommit): void {
    const ops = acceptedOps(c)
    const keyOrigin = origins.get(c) ?? null
    if (ops.length) queueWrite((d) => writeHistory(d, { commit: c, ops, keyOrigin }))
  }

  function applyCommit(m: RepoMemo, c: VerifiedCommit): void {
    const ops = acceptedOps(c)
    m.head = { rev: c.rev, dataCid: c.commit.data }
    m.headCid = c.cid
    m.state = 'synchronized'
    count('records.ops', ops.length)
    const keyOrigin = origins.get(c) ?? null
    queueWrite((d) => writeCommit(d, { commit: c, ops, keyOrigin }))
  }

  function recordValue(collection: string, bytes: Uint8Array): RecordValue {
    const decoded = decodeRecord(bytes)
    // proven (its hash is in the signed tree) but not a record: kept as signed, flagged invalid
    if (!decoded.ok) return { json: 'null', valid: false, invalidReason: decoded.reason }
    const value = decoded.value
    const validity = validateRecord(collection, value)
    return {
      json: JSON.stringify(value),
      valid: validity.valid,
      invalidReason: validity.valid ? null : validity.reason,
    }
  }

  function markDesync(m: RepoMemo, why: string): void {
    m.state = 'desynchronized'
    queueWrite((d) => setRepoState(d, m.did, 'desynchronized', why))
  }

  // ───────────── resync ─────────────

  /**
   * Resyncs one repo from upstream now (the caller holds the repo's queue, so its live events wait
   * behind it in seq order), limited in number. Null when the repo is still backing off.
   */
  async function resyncNow(m: RepoMemo, why: string, force = false): Promise<ResyncResult | null> {
    if (!force && Date.now() < m.nextResyncAt) return null
    // wait out a resolver outage before taking a slot, so one unresolvable DID blocks no other resync
    await identityOf(m.did, false, null).catch((err) => {
      if (!(err instanceof IdentityError)) throw err // a definite answer is the resync's to report
    })
    await acquireResyncSlot()
    try {
      return await resyncUnlimited(m, why)
    } finally {
      releaseResyncSlot()
    }
  }

  let resyncsRunning = 0
  const resyncWaiters: (() => void)[] = []
  async function acquireResyncSlot(): Promise<void> {
    while (resyncsRunning >= config.maxConcurrentResyncs) await new Promise<void>((r) => resyncWaiters.push(r))
    resyncsRunning++
  }
  function releaseResyncSlot(): void {
    resyncsRunning--
    resyncWaiters.shift()?.()
  }

  async function resyncUnlimited(m: RepoMemo, why: string): Promise<ResyncResult> {
    const now = Date.now()
    st.resyncs++
    count('resync.attempts')
    const before = m.state
    m.state = 'resyncing'
    queueWrite((d) => setRepoState(d, m.did, 'resyncing', why))
    try {
      // after a failure the repo may have moved to another PDS: read its DID document afresh
      let id = await identityOf(m.did, m.resyncFailures > 0, null)
      const upstreams = [id.pds, upstreamHttp].filter((x): x is string => !!x)
      if (!m.active) {
        // hidden since an #account (or a refused getRepo): a reactivation may have been missed
        // (OutdatedCursor, a dropped frame), so ask the upstream before giving up on the repo
        const upstream = await fetchStatus(m.did, upstreams)
        if (!upstream.active) {
          const status = upstream.status ?? m.status ?? 'inactive'
          if (status !== m.status) setAccount(m, false, status)
          m.state = before === 'resyncing' ? 'desynchronized' : before
          const state = m.state
          queueWrite((d) => setRepoState(d, m.did, state, `not resynced: account is ${status}`))
          count('resync.skipped-inactive')
          return { ok: false, error: `account is ${status}` }
        }
        setAccount(m, true, null)
        count('resync.reactivated')
      }
      const car = await fetchRepo(m.did, upstreams)
      flush() // the records we hold must be on disk: those the snapshot lacks get proofs of absence
      const held = listRecords(db, { did: m.did, includeHidden: true }).map((r) => ({ collection: r.collection, rkey: r.rkey }))
      // the repo's head is signed by the DID's current key (a resync never moves the key floor: it
      // jumps to the upstream's present, out of stream order)
      let snap
      try {
        snap = await verifyRepoSnapshot(car, m.did, id.signingKey, inScope, { proveAbsent: held })
      } catch (err) {
        if (!(err instanceof VerificationError) || err.reason !== 'bad-signature') throw err
        id = await identityOf(m.did, true, null)
        try {
          snap = await verifyRepoSnapshot(car, m.did, id.signingKey, inScope, { proveAbsent: held })
        } catch (err2) {
          const served = id.mismatch?.served.signingKey
          if (err2 instanceof VerificationError && err2.reason === 'bad-signature' && served && (await verifyRepoSnapshot(car, m.did, served, inScope).then(() => true, () => false))) {
            throw new VerificationError('plc-doc-mismatch', `repo head signed with ${served}, the key the PLC directory's document names; the DID's verified log names ${id.signingKey}`)
          }
          throw err2
        }
      }
      const keyOrigin = id.log ? (id.log.keys.at(-1)?.op ?? null) : null
      if (m.head && snap.commit.rev < m.head.rev) {
        throw new Error(`upstream repo rev ${snap.commit.rev} is older than the mirror's ${m.head.rev}`)
      }
      const records = snap.records.map((r) => ({
        action: 'create' as const,
        collection: r.collection,
        rkey: r.rkey,
        cid: r.cid,
        prev: null,
        proofPath: r.proofPath,
        value: recordValue(r.collection, r.bytes),
      }))
      flush() // the snapshot diff reads the records table: write what is pending first
      let diff!: SnapshotDiff
      db.transaction(() => {
        diff = writeSnapshot(
          db,
          { did: m.did, rev: snap.commit.rev, commitCid: snap.commitCid, dataCid: snap.commit.data, sig: snap.commit.sig, signingKey: snap.signingKey, blocks: snap.proofBlocks, cidBytes: snap.cidBytes, records, absent: snap.absent, keyOrigin },
          inScope,
        )
        setRepoState(db, m.did, 'synchronized', `resynced (${why})`)
      })()
      m.head = { rev: snap.commit.rev, dataCid: snap.commit.data }
      m.headCid = snap.commitCid
      m.state = 'synchronized'
      m.resyncFailures = 0
      m.nextResyncAt = 0
      count('resync.ok')
      return { ok: true, rev: snap.commit.rev, diff }
    } catch (err) {
      if (err instanceof MirrorFatalError || err instanceof Stopping) throw err
      const inactive = err instanceof RepoFetchError ? err.upstreamErrors.map((e) => INACTIVE_REPO_ERRORS[e]).find(Boolean) : undefined
      if (inactive && m.active) {
        // the upstream says the account is not active: hide it until an #account event says otherwise
        setAccount(m, false, inactive)
        count('resync.repo-inactive')
      }
      st.resyncFailures++
      m.resyncFailures++
      m.nextResyncAt = now + Math.min(config.resyncBackoffMs * 2 ** (m.resyncFailures - 1), 3_600_000)
      count('resync.failed')
      const message = `resync failed (${why}), attempt ${m.resyncFailures}, next not before ${new Date(m.nextResyncAt).toISOString()}: ${(err as Error).message}`
      m.state = 'desynchronized'
      queueWrite((d) => setRepoState(d, m.did, 'desynchronized', message))
      return { ok: false, error: (err as Error).message }
    }
  }

  /** Account status learned outside an #account event (getRepo / getRepoStatus answers). */
  function setAccount(m: RepoMemo, active: boolean, status: string | null): void {
    m.active = active
    m.status = status
    const seq = m.lastSeq
    queueWrite((d) => setRepoAccount(d, m.did, active, status, seq))
  }

  // ───────────── other events ─────────────

  async function onIdentity(evt: IdentityEvent): Promise<void> {
    const m = memo(evt.did)
    if (!m) return void count('identity.passthrough')
    // an old #identity seen again (replay) changes nothing stored, but still marks its place in the
    // key history: later events of this pass must not use keys it rotated out
    const stale = evt.seq <= m.lastSeq
    if (!stale) m.lastSeq = evt.seq
    let id: ResolvedIdentity
    try {
      id = await identityOf(evt.did, !stale, stale ? null : evt.seq)
    } catch (err) {
      if (!(err instanceof IdentityError)) throw err
      if (stale) return void count('identity.stale')
      return reject({ seq: evt.seq, did: evt.did }, identityReason(err), err.message)
    }
    if (id.log) {
      const epoch = epochAtIdentityEvent(id.log.keys, evt.time)
      if (epoch) raiseFloor(evt.did, evt.seq, epoch, id.log.keys, `#identity at seq ${evt.seq}`)
    }
    if (stale) return void count('identity.stale')
    if (id.mismatch) reject({ seq: evt.seq, did: evt.did }, 'plc-doc-mismatch', id.mismatch.message)
  }

  async function onAccount(evt: AccountEvent): Promise<void> {
    const m = memo(evt.did)
    if (!m) return void count('account.passthrough')
    if (evt.seq <= m.lastSeq) return void count('account.stale')
    m.lastSeq = evt.seq
    m.active = evt.active
    m.status = evt.active ? null : (evt.status ?? 'inactive')
    const status = m.status
    queueWrite((d) => setRepoAccount(d, evt.did, evt.active, status, evt.seq))
    if (!evt.active && evt.status === 'deleted') {
      count('account.purged')
      queueWrite((d) => purgeRepo(d, evt.did, { seq: evt.seq, time: evt.time }))
    }
  }

  async function onSync(evt: SyncEvent): Promise<void> {
    const m = memo(evt.did)
    if (!m) return void count('sync.passthrough')
    const ref = { seq: evt.seq, did: evt.did, rev: evt.rev }
    let proven: VerifiedSync
    let keyOrigin: PlcOpRef | null = null
    try {
      const id = await identityOf(evt.did, false, null)
      const withLog = async (ident: ResolvedIdentity): Promise<VerifiedSync> => {
        const ev = { seq: evt.seq, did: evt.did, time: evt.time }
        const signed = () => {
          const car = readVerifiedCar(evt.blocks)
          return car.blocks.get(car.roots[0]!)!
        }
        const r = await withLogKey(ev, ident, async (key) => verifySync(evt, key), signed)
        keyOrigin = r.origin
        return r.result
      }
      if (id.log) proven = await withLog(id)
      else {
        try {
          proven = verifySync(evt, id.signingKey)
        } catch (err) {
          if (!(err instanceof VerificationError) || err.reason !== 'bad-signature') throw err
          // PDSes emit #sync right after a key rotation: refresh the document once and retry
          count('identity.forced-refresh')
          const fresh = await identityOf(evt.did, true, evt.seq)
          if (fresh.log) proven = await withLog(fresh)
          else if (fresh.signingKey === id.signingKey) throw err
          else proven = verifySync(evt, fresh.signingKey)
        }
      }
    } catch (err) {
      if (err instanceof VerificationError) return reject(ref, err.reason, err.message)
      if (err instanceof IdentityError) return reject(ref, identityReason(err), err.message)
      throw err
    }
    if (m.head && evt.rev <= m.head.rev) return void count('sync.stale')
    if (m.head && proven.commit.data === m.head.dataCid) {
      // same data, newly signed (rotation, reactivation): only the head moves
      const since = m.head.rev
      m.head = { rev: evt.rev, dataCid: proven.commit.data }
      m.headCid = proven.cid
      const origin = keyOrigin
      queueWrite((d) => writeSyncHead(d, proven, since, origin))
      return void count('sync.advanced')
    }
    // a newer signed head whose data we do not hold: only the whole repo can tell what changed
    count('sync.resync')
    markDesync(m, `#sync to rev ${evt.rev}`)
    await resyncNow(m, '#sync', true)
  }

  function onInfo(evt: InfoEvent): void {
    // counter names come from a closed list: the stream must not be able to grow the counters table
    count(`info.${KNOWN_INFO.has(evt.name) ? evt.name : 'other'}`)
    const at = lastSeq >= 0 ? lastSeq : null
    const name = clip(evt.name, 128)
    const message = evt.message === undefined ? null : clip(evt.message, 2048)
    queueWrite((d) => addStreamInfo(d, name, message, at))
    if (evt.name === 'OutdatedCursor') healOutdatedCursor()
  }

  /**
   * The events between our cursor and the upstream's window are gone: resync every repo in scope,
   * and ask the upstream for repos that entered scope inside the gap (we never saw them).
   */
  function healOutdatedCursor(): void {
    const known = new Set<string>([...repos.keys(), ...listRepos(db).map((r) => r.did)])
    for (const did of known) {
      const m = memo(did)!
      markDesync(m, 'OutdatedCursor: events missed')
      background(scheduleResync(m, 'OutdatedCursor', true))
    }
    background(
      (async () => {
        let found: string[]
        try {
          found = (await discoverRepos(service, config.collections, { signal: stopSignal.signal })).dids
        } catch (err) {
          count('outdated.discovery-failed')
          const message = `cannot list repos holding ${config.collections.join(',')} after OutdatedCursor: ${(err as Error).message}`
          queueWrite((d) => addStreamInfo(d, 'DiscoveryFailed', message, null))
          return
        }
        for (const did of found) {
          if (known.has(did) || repos.has(did)) continue
          count('outdated.discovered')
          background(scheduleResync(track(did), 'OutdatedCursor: repo first seen', true))
        }
      })(),
    )
  }

  /** Queues a resync on the repo's own queue, so its later events wait behind it in order. */
  function scheduleResync(m: RepoMemo, why: string, force = false): Promise<ResyncResult | null> {
    let result: ResyncResult | null = null
    return runTask(m.did, async () => {
      if (m.state === 'synchronized' && !force) return
      result = await resyncNow(m, why, force)
    }).then(() => result)
  }

  /** aborts network work that no event waits for (discovery) when the mirror stops */
  const stopSignal = new AbortController()

  /** Work not tied to a stream seq (resyncs, discovery): counted, and awaited by drain(). */
  const backgroundTasks = new Set<Promise<unknown>>()
  function background<T>(p: Promise<T>): Promise<T> {
    backgroundTasks.add(p)
    st.background = backgroundTasks.size
    const done = () => {
      backgroundTasks.delete(p)
      st.background = backgroundTasks.size
    }
    p.then(done, done)
    return p
  }

  /** Retries desynchronized repos whose backoff has passed (they may see no event for a long time). */
  function retryDesynchronized(): void {
    if (fatal) return
    const now = Date.now()
    for (const m of repos.values()) {
      if (m.state !== 'synchronized' && m.active && now >= m.nextResyncAt && !tails.has(m.did)) {
        background(scheduleResync(m, 'retry'))
      }
    }
  }

  async function runEvent(evt: RepoEvent): Promise<void> {
    switch (evt.type) {
      case 'commit':
        return onCommit(evt)
      case 'identity':
        return onIdentity(evt)
      case 'account':
        return onAccount(evt)
      case 'sync':
        return onSync(evt)
    }
  }

  // ───────────── intake ─────────────

  /** Runs `fn` on the repo's queue (after its pending events) without holding a stream seq. */
  function runTask(did: string, fn: () => Promise<void>): Promise<void> {
    const prev = tails.get(did) ?? Promise.resolve()
    const next = prev
      .then(() => (fatal || stopping ? undefined : fn()))
      .catch((err) => {
        if (err instanceof Stopping) return
        fatal ??= err instanceof MirrorFatalError ? err : new MirrorFatalError('internal', `task for ${did}: ${(err as Error).stack ?? err}`, { cause: err })
      })
      .finally(() => {
        if (tails.get(did) === next) tails.delete(did)
      })
    tails.set(did, next)
    return next
  }

  function enqueue(evt: RepoEvent): void {
    const did = eventDid(evt)
    const bytes = eventBytes(evt)
    inflight.add(evt.seq)
    depth.set(did, (depth.get(did) ?? 0) + 1)
    inflightBytes += bytes
    st.inFlight = inflight.size
    st.inFlightBytes = inflightBytes
    let abandoned = false
    const prev = tails.get(did) ?? Promise.resolve()
    const next = prev
      .then(() => {
        if (stopping) throw new Stopping()
        return fatal ? undefined : runEvent(evt)
      })
      .catch((err) => {
        if (err instanceof Stopping) {
          abandoned = true
          return
        }
        fatal ??= err instanceof MirrorFatalError ? err : new MirrorFatalError('internal', `event ${evt.seq} of ${did}: ${(err as Error).stack ?? err}`, { cause: err })
      })
      .finally(() => {
        const d = (depth.get(did) ?? 1) - 1
        if (d > 0) depth.set(did, d)
        else depth.delete(did)
        inflightBytes -= bytes
        st.inFlightBytes = inflightBytes
        finishSeq(evt.seq, abandoned)
        st.inFlight = inflight.size
        if (tails.get(did) === next) tails.delete(did)
      })
    tails.set(did, next)
  }

  /** What an event holds in memory, roughly: its blocks (the rest is small and bounded by the frame). */
  const eventBytes = (evt: RepoEvent): number => 256 + (evt.type === 'commit' || evt.type === 'sync' ? evt.blocks.byteLength : 0)

  /** True while the pipeline holds as much as it may: the caller waits (and so the socket stays paused). */
  const full = (did: string): boolean =>
    inflight.size >= config.maxInFlight || inflightBytes >= config.maxInFlightBytes || (depth.get(did) ?? 0) >= config.maxInFlightPerRepo

  function passThrough(bytes: Uint8Array, maxSeq?: number): CommitPeek | null {
    if (fatal || stopping) return null
    const p = peekCommit(bytes)
    if (!p || p.seq <= lastSeq || (maxSeq !== undefined && p.seq > maxSeq) || tails.has(p.repo)) return null
    if (p.paths.some(pathInScope)) return null
    if (memo(p.repo)) return null
    // what handleFrame and onCommit would do for it, without the queue
    st.received++
    count('events.commit')
    lastSeq = p.seq
    st.lastSeq = p.seq
    st.passthrough++
    count('frames.passthrough')
    inflight.add(p.seq)
    finishSeq(p.seq)
    return p
  }

  async function handleFrame(frame: Frame): Promise<void> {
    if (fatal) throw fatal
    if (stopping) return // not taken: the cursor stays below it
    st.received++
    if (frame.kind === 'error') {
      count(`errors.${KNOWN_ERRORS.has(frame.error) ? frame.error : 'other'}`)
      return
    }
    if (frame.kind === 'unknown') {
      st.unknown++
      count('frames.unknown')
      return
    }
    const evt = frame.event
    count(`events.${evt.type}`)
    if (evt.type === 'info') return onInfo(evt)
    if (evt.seq <= lastSeq) {
      st.duplicates++
      count('frames.duplicate')
      return
    }
    lastSeq = evt.seq
    st.lastSeq = evt.seq
    enqueue(evt)
    // backpressure: until the pipeline has room, this frame is not done and the socket stays paused
    const did = eventDid(evt)
    while (full(did) && !fatal && !stopping) await new Promise<void>((r) => capacityWaiters.push(r))
    if (fatal) throw fatal
  }

  async function drain(): Promise<void> {
    while (tails.size || backgroundTasks.size) await Promise.all([...tails.values(), ...backgroundTasks])
    if (inflight.size === 0 && abandonedMin === Infinity && lastSeq >= 0 && (safeSeq === null || lastSeq > safeSeq)) safeSeq = lastSeq
    flush()
    if (fatal) throw fatal
  }

  function stop(): void {
    if (stopping) return
    stopping = true
    stopSignal.abort()
    for (const w of [...stopWaiters]) w()
    wakeCapacityWaiters()
  }

  // repos left desynchronized by an earlier run are retried like any other
  for (const row of listRepos(db, 'desynchronized')) memo(row.did)
  for (const row of listRepos(db, 'resyncing')) memo(row.did)
  const retryTimer = setInterval(retryDesynchronized, Math.min(config.resyncBackoffMs, 5_000))
  // queue depths reach the database even when nothing else is written (e.g. all waiting on the resolver)
  const depthTimer = setInterval(() => safely(flush), 5_000)
  depthTimer.unref()
  retryTimer.unref()

  return {
    service,
    passThrough,
    handleFrame,
    badFrame(code) {
      st.badFrames++
      count(`frames.undecodable.${code}`)
    },
    drain,
    stop,
    async resync(did, why) {
      const m = memo(did) ?? track(did)
      const result = await background(scheduleResync(m, why, true))
      flush()
      if (fatal) throw fatal
      return result ?? { ok: false, error: 'not attempted' }
    },
    stats: () => ({ ...st }),
    totals: () => Object.fromEntries(totals),
    identityStats: () => {
      const r = resolver.stats()
      return { calls: r.calls, cacheHits: r.cacheHits, fetches: r.fetches, primed: r.primed, logsVerified: r.logsVerified, logVerifyMs: r.logVerifyMs }
    },
    cursor: () => durable,
    position: () => safeSeq ?? config.cursor ?? stored,
    async close() {
      clearInterval(retryTimer)
      clearInterval(depthTimer)
      await drain().catch(() => undefined)
      if (flushTimer) clearTimeout(flushTimer)
      await verifier.close()
    },
  }
}

/** DIDs remembered as untracked before the set starts over (bounds memory on a network of millions) */
const UNTRACKED_MAX = 500_000

const KNOWN_INFO = new Set(['OutdatedCursor'])
const KNOWN_ERRORS = new Set(['FutureCursor', 'ConsumerTooSlow'])

const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max)}… (${s.length} characters)` : s)
