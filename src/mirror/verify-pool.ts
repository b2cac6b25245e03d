/**
 * Commit verification spread over worker threads. Each DID always goes to the same thread (a hash of
 * the DID picks it), so a repo's key is parsed and cached by one thread only; the order of a repo's
 * commits is the mirror's per-repo queue's to keep (it sends the next only when the last returned).
 *
 * With 0 threads, or for a job whose thread died, `verifyCommit` runs on the calling thread: the
 * verdict is the same function's either way, only the thread differs.
 */
import { Worker } from 'node:worker_threads'
import type { CommitEvent } from '../firehose/events.ts'
import { verifyCommit, type SignedCommit, type VerifiedCommit, type VerifiedOp } from '../verify/commit.ts'
import { VerificationError, type ReasonCode } from '../verify/reasons.ts'
import { commitScope } from './config.ts'

const MAX_THREAD_FAILURES = 3

export interface VerifyWorkerData {
  collections: string[]
}

/** One commit to verify (main thread → worker). */
export interface VerifyJob {
  id: number
  evt: CommitEvent
  key: string
}

/** The verdict (worker → main thread); reason null = an unexpected error, not a refusal. */
export type VerifyReply =
  | { id: number; ok: true; packed: PackedCommit }
  | { id: number; ok: true; verified: VerifiedCommit }
  | { id: number; ok: false; reason: ReasonCode | null; message: string }

/**
 * A VerifiedCommit whose byte arrays (blocks, commit, signature, records) are all views of one
 * buffer, sent as that buffer (transferred) and the offsets into it: cloning the views one by one
 * cost more than the rest of the message.
 */
export interface PackedCommit {
  rest: Omit<VerifiedCommit, 'commit' | 'commitBytes' | 'ops' | 'blocks' | 'cidBytes'> & {
    commit: Omit<SignedCommit, 'sig'>
    ops: Omit<VerifiedOp, 'recordBytes'>[]
  }
  buffer: ArrayBuffer
  cids: string[]
  /** offset and length of each block in `buffer`, then of the signature */
  ranges: number[]
  /** offset of each block's binary CID (36 bytes) in `buffer`; null when they are not all there */
  cidOffsets: number[] | null
}

/** Packs `v` when every byte array is a view of the commit's buffer; null otherwise (send it whole). */
export function packCommit(v: VerifiedCommit): PackedCommit | null {
  const buffer = v.commitBytes.buffer
  if (!(buffer instanceof ArrayBuffer)) return null
  const cids: string[] = []
  const ranges: number[] = []
  let cidOffsets: number[] | null = []
  for (const [cid, bytes] of v.blocks) {
    if (bytes.buffer !== buffer) return null
    cids.push(cid)
    ranges.push(bytes.byteOffset, bytes.byteLength)
    const bin = v.cidBytes?.get(cid)
    if (bin?.buffer === buffer && bin.byteLength === 36) cidOffsets?.push(bin.byteOffset)
    else cidOffsets = null
  }
  const sig = v.commit.sig
  if (sig.buffer !== buffer || v.blocks.get(v.cid) !== v.commitBytes) return null
  for (const op of v.ops) if (op.recordBytes !== (op.cid ? v.blocks.get(op.cid) : undefined)) return null
  ranges.push(sig.byteOffset, sig.byteLength)
  const { commit, commitBytes: _bytes, ops, blocks: _blocks, cidBytes: _cids, ...rest } = v
  const { sig: _sig, ...signed } = commit
  return { rest: { ...rest, commit: signed, ops: ops.map(({ recordBytes: _r, ...op }) => op) }, buffer, cids, ranges, cidOffsets }
}

export function unpackCommit(p: PackedCommit): VerifiedCommit {
  const blocks = new Map<string, Uint8Array>()
  const r = p.ranges
  for (let i = 0; i < p.cids.length; i++) blocks.set(p.cids[i]!, new Uint8Array(p.buffer, r[2 * i], r[2 * i + 1]))
  const sig = new Uint8Array(p.buffer, r[r.length - 2], r[r.length - 1])
  const offsets = p.cidOffsets
  const cidBytes = offsets ? new Map(p.cids.map((cid, i) => [cid, new Uint8Array(p.buffer, offsets[i], 36)])) : undefined
  return {
    ...p.rest,
    ...(cidBytes && { cidBytes }),
    commit: { ...p.rest.commit, sig },
    commitBytes: blocks.get(p.rest.cid)!,
    ops: p.rest.ops.map((op) => ({ ...op, recordBytes: op.cid ? blocks.get(op.cid) : undefined })),
    blocks,
  }
}

export interface CommitVerifier {
  /** threads verifying (0 = the calling thread) */
  readonly threads: number
  verify(evt: CommitEvent, key: string): Promise<VerifiedCommit>
  /** commits verified per thread, on the calling thread, and threads that died (not by close()) */
  stats(): { byThread: number[]; local: number; threadFailures: number }
  /** Stops the threads; jobs still running there finish on the calling thread. */
  close(): Promise<void>
}

interface Pending {
  job: VerifyJob
  resolve: (v: VerifiedCommit) => void
  reject: (err: unknown) => void
}

interface Lane {
  worker: Worker | null
  pending: Map<number, Pending>
  done: number
}

const WORKER_YOUNG_GENERATION_MB = 24

export interface CommitVerifierOptions {
  threads: number
  /** the scope patterns (`nsid`, `prefix.*`): each thread, and the calling thread, builds its scope from them (`commitScope`) */
  collections: string[]
  /** a thread died other than by close(); its jobs are verified on the calling thread */
  onThreadFailure?: (err: unknown) => void
  /** the thread's script (default `verify-worker.ts`; a test gives one that cannot start) */
  workerUrl?: URL
}

export function createCommitVerifier(opts: CommitVerifierOptions): CommitVerifier {
  let localJobs = 0
  let threadFailures = 0
  const scope = commitScope(opts.collections)
  const local = (evt: CommitEvent, key: string) => {
    localJobs++
    return verifyCommit(evt, key, scope)
  }
  const lanes: Lane[] = Array.from({ length: Math.max(0, opts.threads) }, () => ({ worker: null, pending: new Map(), done: 0 }))
  let nextId = 0
  let closed = false

  function start(lane: Lane): Worker {
    const worker = new Worker(opts.workerUrl ?? new URL('./verify-worker.ts', import.meta.url), {
      workerData: { collections: opts.collections } satisfies VerifyWorkerData,
      // a job's objects die with the job, so a small young generation is enough (V8's default grows
      // with the machine's RAM): ≈ 25 MB less resident on the bench at the same speed
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    })
    worker.unref() // referenced only while it holds jobs (see verify): an idle pool keeps no process alive
    worker.on('message', (reply: VerifyReply) => {
      const p = lane.pending.get(reply.id)
      if (!p) return
      lane.pending.delete(reply.id)
      lane.done++
      if (lane.pending.size === 0) worker.unref()
      if (reply.ok) p.resolve('packed' in reply ? unpackCommit(reply.packed) : reply.verified)
      else if (reply.reason) p.reject(new VerificationError(reply.reason, reply.message))
      else p.reject(new Error(`verification thread: ${reply.message}`))
    })
    const fail = (err?: unknown) => {
      if (lane.worker !== worker) return
      lane.worker = null
      if (!closed) {
        threadFailures++
        opts.onThreadFailure?.(err ?? new Error('verification thread exited'))
      }
      // the thread is gone (a crash, or close()): its jobs are verified here instead, none is lost
      const orphans = [...lane.pending.values()]
      lane.pending.clear()
      for (const p of orphans) local(p.job.evt, p.job.key).then(p.resolve, p.reject)
    }
    worker.on('error', fail)
    worker.on('exit', () => fail())
    return worker
  }

  function laneOf(did: string): Lane {
    let h = 0
    for (let i = 0; i < did.length; i++) h = (Math.imul(h, 31) + did.charCodeAt(i)) | 0
    return lanes[(h >>> 0) % lanes.length]!
  }

  return {
    threads: lanes.length,
    verify(evt, key) {
      // threads that keep dying (a thread that cannot start, say) are given up: all on this thread
      if (!lanes.length || closed || threadFailures >= MAX_THREAD_FAILURES) return local(evt, key)
      const lane = laneOf(evt.repo)
      const worker = (lane.worker ??= start(lane))
      // the blocks go over as a buffer of their own, transferred: the frame's buffer stays here
      // (a copy, even of a Buffer, whose slice() is a view and whose pool cannot be transferred)
      const blocks = new Uint8Array(evt.blocks)
      const job: VerifyJob = { id: nextId++, evt: { ...evt, blocks }, key }
      return new Promise<VerifiedCommit>((resolve, reject) => {
        if (lane.pending.size === 0) worker.ref()
        // the job keeps the event with its blocks intact (not the transferred copy) for a fallback
        lane.pending.set(job.id, { job: { ...job, evt }, resolve, reject })
        worker.postMessage(job, [blocks.buffer])
      })
    },
    stats: () => ({ byThread: lanes.map((l) => l.done), local: localJobs, threadFailures }),
    async close() {
      closed = true
      await Promise.all(lanes.map((l) => l.worker?.terminate()))
    },
  }
}
