/**
 * Builds the bench stream once and caches it (see cache.ts). Accounts are generated independently
 * on worker threads (one per core), then their frames are merged into seq order.
 *
 *   npm exec -- node bench/stream/generate.ts [--commits N] [--force]
 */
import { mkdirSync, openSync, readSync, closeSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { createCaptureWriter } from '../../src/firehose/capture.ts'
import { decodeFrame } from '../../src/firehose/frames.ts'
import { DEFAULT_CACHE_DIR, loadCachedStream, streamDir, type AccountInfo, type CachedStream, type StreamMeta } from './cache.ts'
import type { WorkerInput, WorkerMessage } from './gen-worker.ts'
import { DEFAULT_PARAMS, makeIdentities, makePlan, streamId, withIdentities, type StreamParams } from './plan.ts'

export interface GenerateProgress {
  accountsDone: number
  accounts: number
  commitsDone: number
  commits: number
  elapsedSec: number
  phase: 'accounts' | 'merge'
}

export interface EnsureOptions {
  cacheDir?: string
  force?: boolean
  threads?: number
  onProgress?: (p: GenerateProgress) => void
}

/** Returns the cached stream for `params`, generating it first when it is not there. */
export async function ensureStream(params: StreamParams, opts: EnsureOptions = {}): Promise<CachedStream> {
  const cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR
  const id = streamId(params)
  if (!opts.force) {
    const hit = loadCachedStream(cacheDir, id)
    if (hit) return hit
  }
  const dir = streamDir(cacheDir, id)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  await generateInto(dir, id, params, opts)
  return loadCachedStream(cacheDir, id)!
}

async function generateInto(dir: string, id: string, params: StreamParams, opts: EnsureOptions): Promise<void> {
  const started = Date.now()
  const plan = makePlan(params)
  const identities = await makeIdentities(plan)
  withIdentities(plan, identities)
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), 8))

  // balance the workers by estimated cost (initial records are cheaper than commits)
  const cost = (i: number) => plan.accounts[i]!.initialRecords * 0.35 + plan.accounts[i]!.slots.length * 3.3
  const order = plan.accounts.map((a) => a.index).sort((a, b) => cost(b) - cost(a))
  const parts: number[][] = Array.from({ length: threads }, () => [])
  const load = new Array<number>(threads).fill(0)
  for (const i of order) {
    const w = load.indexOf(Math.min(...load))
    parts[w]!.push(i)
    load[w]! += cost(i)
  }

  const fileOf = new Uint8Array(params.commits)
  const offsetOf = new Float64Array(params.commits)
  const lengthOf = new Uint32Array(params.commits)
  const filled = new Uint8Array(params.commits)
  const infos: AccountInfo[] = new Array(plan.accounts.length)
  const progress: GenerateProgress = { accountsDone: 0, accounts: plan.accounts.length, commitsDone: 0, commits: params.commits, elapsedSec: 0, phase: 'accounts' }
  const tick = setInterval(() => {
    progress.elapsedSec = (Date.now() - started) / 1000
    opts.onProgress?.({ ...progress })
  }, 1000)

  try {
    await Promise.all(
      parts.map(
        (accounts, w) =>
          new Promise<void>((resolve, reject) => {
            const input: WorkerInput = { params, identities, accounts, framesPath: join(dir, `frames-${w}.tmp`), reposPath: join(dir, `repos-${w}.bin`) }
            const worker = new Worker(new URL('./gen-worker.ts', import.meta.url), { workerData: input })
            worker.on('message', (m: WorkerMessage) => {
              if (m.type === 'progress') progress.commitsDone += m.commits
              else if (m.type === 'account') {
                const a = plan.accounts[m.index]!
                progress.accountsDone++
                for (const [slot, offset, length] of m.frames) {
                  fileOf[slot] = w
                  offsetOf[slot] = offset
                  lengthOf[slot] = length
                  filled[slot] = 1
                }
                infos[m.index] = {
                  did: m.did,
                  plcOp: a.plcOp!,
                  handle: a.handle,
                  didKey: m.didKey,
                  keyType: a.keyType,
                  isNew: a.isNew,
                  initialRecords: a.initialRecords,
                  commits: a.slots.length,
                  doc: m.doc,
                  repo: m.repo && { file: `repos-${w}.bin`, ...m.repo },
                }
              } else if (m.type === 'done') resolve()
            })
            worker.on('error', reject)
            worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`generator worker ${w} exited with ${code}`))))
          }),
      ),
    )
    if (filled.some((f) => f === 0)) throw new Error('generator: some slots got no frame')

    // merge into seq order, counting what the stream holds
    progress.phase = 'merge'
    const capturePath = join(dir, 'stream.capture')
    const writer = await createCaptureWriter(capturePath, { source: 'bench-generator', cursor: 0, overwrite: true, meta: { streamId: id, params } })
    const fds = parts.map((_, w) => openSync(join(dir, `frames-${w}.tmp`), 'r'))
    const ops = { create: 0, update: 0, delete: 0, malfestio: 0 }
    const opsPerCommit = { one: 0, few: 0, batch: 0 }
    let p256Commits = 0
    let genesisCommits = 0
    let bytes = 0
    const p256 = new Set(plan.accounts.filter((a) => a.keyType === 'p256').map((a) => a.did))
    try {
      for (let slot = 0; slot < params.commits; slot++) {
        const buf = Buffer.allocUnsafe(lengthOf[slot]!)
        readSync(fds[fileOf[slot]!]!, buf, 0, buf.byteLength, offsetOf[slot]!)
        const frame = decodeFrame(buf)
        if (frame.kind !== 'message' || frame.event.type !== 'commit' || frame.event.seq !== slot + 1) {
          throw new Error(`generator: frame at slot ${slot} is not commit seq ${slot + 1}`)
        }
        const evt = frame.event
        for (const op of evt.ops) {
          ops[op.action]++
          if (op.path.startsWith('org.stormlightlabs.malfestio.')) ops.malfestio++
        }
        if (evt.ops.length === 1) opsPerCommit.one++
        else if (evt.ops.length <= 5) opsPerCommit.few++
        else opsPerCommit.batch++
        if (p256.has(evt.repo)) p256Commits++
        if (evt.since === null) genesisCommits++
        bytes += buf.byteLength
        await writer.write(buf)
        progress.commitsDone = slot + 1
      }
    } finally {
      for (const fd of fds) closeSync(fd)
      await writer.close()
    }
    for (let w = 0; w < parts.length; w++) rmSync(join(dir, `frames-${w}.tmp`), { force: true })

    const sizes = plan.accounts.filter((a) => !a.isNew).map((a) => a.initialRecords).sort((a, b) => a - b)
    const meta: StreamMeta = {
      id,
      params,
      frames: params.commits,
      firstSeq: 1,
      lastSeq: params.commits,
      bytes,
      ops,
      opsPerCommit,
      p256Commits,
      genesisCommits,
      repoRecordsAtStart: {
        min: sizes[0] ?? 0,
        median: sizes[Math.floor(sizes.length / 2)] ?? 0,
        max: sizes[sizes.length - 1] ?? 0,
        total: sizes.reduce((s, n) => s + n, 0),
      },
      generatedAt: new Date().toISOString(),
      generationSec: Math.round((Date.now() - started) / 100) / 10,
    }
    writeFileSync(join(dir, 'accounts.json'), JSON.stringify(infos))
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2))
  } finally {
    clearInterval(tick)
  }
}

export function parseStreamParams(argv: string[]): StreamParams {
  const params = { ...DEFAULT_PARAMS }
  const num = (flag: string) => {
    const i = argv.indexOf(flag)
    if (i < 0) return undefined
    const n = Number(argv[i + 1])
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`)
    return n
  }
  const scale = (n: number) => Math.max(1, Math.round(n))
  const commits = num('--commits')
  if (commits !== undefined) {
    // a smaller stream keeps the same shape: accounts scale with the commit count
    const f = commits / DEFAULT_PARAMS.commits
    params.commits = scale(commits)
    params.heavyAccounts = scale(DEFAULT_PARAMS.heavyAccounts * Math.min(1, f * 2))
    params.lightAccounts = scale(DEFAULT_PARAMS.lightAccounts * f)
    params.newAccounts = scale(DEFAULT_PARAMS.newAccounts * f)
  }
  const seed = num('--seed')
  if (seed !== undefined) params.seed = seed
  return params
}

export function formatProgress(p: GenerateProgress): string {
  if (p.phase === 'merge') return `bench stream: merging ${p.commitsDone}/${p.commits} frames (${p.elapsedSec.toFixed(0)} s)`
  const rate = p.commitsDone / Math.max(1, p.elapsedSec)
  return `bench stream: ${p.accountsDone}/${p.accounts} accounts, ${p.commitsDone}/${p.commits} commits (${p.elapsedSec.toFixed(0)} s, ${rate.toFixed(0)} commits/s)`
}

if (import.meta.main) {
  const argv = process.argv.slice(2)
  const params = parseStreamParams(argv)
  const id = streamId(params)
  const cacheDir = DEFAULT_CACHE_DIR
  if (!argv.includes('--force') && existsSync(join(streamDir(cacheDir, id), 'meta.json'))) {
    console.log(`bench stream ${id} is already cached in ${streamDir(cacheDir, id)}`)
  } else {
    const s = await ensureStream(params, { cacheDir, force: true, onProgress: (p) => console.error(formatProgress(p)) })
    console.log(JSON.stringify(s.meta, null, 2))
  }
}
