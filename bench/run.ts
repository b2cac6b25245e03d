/**
 * `npm run bench [-- --json] [-- --commits N] [-- --passes N] [-- --no-peer] [-- --no-check] [-- --profile]`
 *
 * Builds (once, cached in bench/.cache/) a recorded stream of signed #commit frames, serves it over a
 * local WebSocket like a relay (with PLC and PDS endpoints beside it), and feeds the same frames to
 * this project's pipeline and to @atproto/sync's Firehose, each in its own process. Prints a table;
 * with --json the last line is one JSON object with every figure.
 */
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { MALFESTIO_COLLECTIONS } from '../src/mirror/config.ts'
import { cliNodeSetup, runChild } from './lib/child.ts'
import { startBenchServers } from './lib/servers.ts'
import type { BackfillInput, BackfillResult } from './scenarios/backfill.ts'
import type { CheckInput, CheckResult } from './scenarios/check.ts'
import type { InprocInput, InprocResult } from './scenarios/inproc.ts'
import type { MirrorScenarioInput, MirrorScenarioResult } from './scenarios/mirror.ts'
import type { PeerInput, PeerResult } from './scenarios/peer.ts'
import { ensureStream, formatProgress, parseStreamParams } from './stream/generate.ts'

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const num = (name: string, dflt: number) => {
  const i = argv.indexOf(name)
  if (i < 0) return dflt
  const n = Number(argv[i + 1])
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} needs a non-negative integer`)
    process.exit(2)
  }
  return n
}
if (flag('--help') || flag('-h')) {
  console.log(`npm run bench [-- options]
  --json            print the figures as one JSON object on the last line
  --commits N       stream size (default 50000 #commit frames; smaller streams keep the same shape)
  --passes N        passes of the verified pipeline in one process (default 2: the second shows growth)
  --no-peer         skip @atproto/sync's Firehose
  --no-check        skip the fast-vs-reference verdict check over the whole stream
  --verify-threads N  verification threads of our pipeline (default: the CLI's, cores − 1)
  --max-in-flight N   events in flight in our pipeline (default: the CLI's)
  --quick           the verified pipeline only, one pass (no pass-through, in-process, peer or check runs)
  --profile         write CPU profiles of the verified pipeline (node --cpu-prof) under .tmp/bench-prof/
  --regen           rebuild the cached stream`)
  process.exit(0)
}

const json = flag('--json')
const log = (line: string) => console.error(line)
const params = parseStreamParams(argv)
const quick = flag('--quick')
const passes = quick ? 1 : Math.max(1, num('--passes', 2))
const verifyThreads = argv.includes('--verify-threads') ? num('--verify-threads', 0) : undefined
const maxInFlight = argv.includes('--max-in-flight') ? Math.max(1, num('--max-in-flight', 1)) : undefined
const profileDir = join(process.cwd(), '.tmp', 'bench-prof')
const startLoad = loadavg()
const startedAt = new Date()

// ───────────── the stream ─────────────
let lastLine = 0
const stream = await ensureStream(params, {
  force: flag('--regen'),
  onProgress: (p) => {
    if (Date.now() - lastLine < 5000 && p.phase === 'accounts') return
    lastLine = Date.now()
    log(formatProgress(p))
  },
})
const meta = stream.meta
log(`bench stream ${meta.id}: ${meta.frames} #commit frames, ${stream.accounts.length} accounts, ${(meta.bytes / 1e6).toFixed(0)} MB (${stream.dir})`)

const servers = await startBenchServers(stream)
const workDir = mkdtempSync(join(tmpdir(), 'malfestio-bench-'))
const progress = (line: string) => log(`  ${line}`)
const scenario = (name: string) => new URL(`./scenarios/${name}.ts`, import.meta.url)
// our pipeline runs with the CLI's node flags and environment; the peer with Node's defaults (what each one's users get)
const { env: ourEnv, flags: ourFlags } = cliNodeSetup()

try {
  // ───────────── start database: every repo of the stream backfilled ─────────────
  log('setup: backfilling the repos that exist at stream start (getRepo, full verification) …')
  const template = join(workDir, 'template.db')
  const backfill = await runChild<BackfillResult>(
    scenario('backfill'),
    {
      service: servers.wsUrl,
      http: servers.url,
      dbPath: template,
      collections: MALFESTIO_COLLECTIONS,
      dids: stream.accounts.filter((a) => a.repo).map((a) => a.did),
    } satisfies BackfillInput,
    { onProgress: progress, env: ourEnv, execArgv: ourFlags },
  )
  if (backfill.failed) throw new Error(`backfill: ${backfill.failed} repos failed`)

  // ───────────── (a) this pipeline, every commit in scope ─────────────
  log(`ours: verified pipeline over the socket, ${passes} pass(es) …`)
  if (flag('--profile')) mkdirSync(profileDir, { recursive: true })
  const verified = await runChild<MirrorScenarioResult>(
    scenario('mirror'),
    {
      label: 'verified',
      service: servers.wsUrl,
      http: servers.url,
      template,
      collections: MALFESTIO_COLLECTIONS,
      lastSeq: meta.lastSeq,
      passes,
      workDir,
      verifyThreads,
      maxInFlight,
    } satisfies MirrorScenarioInput,
    { onProgress: progress, env: ourEnv, execArgv: [...ourFlags, ...(flag('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])] },
  )

  // ───────────── (a') this pipeline, nothing in scope: pass-through ─────────────
  if (!quick) log('ours: out-of-scope pass-through over the socket …')
  const passthrough = quick ? null : await runChild<MirrorScenarioResult>(
    scenario('mirror'),
    {
      label: 'passthrough',
      service: servers.wsUrl,
      http: servers.url,
      template: null,
      collections: ['org.example.nothing'],
      lastSeq: meta.lastSeq,
      passes: 1,
      workDir,
    } satisfies MirrorScenarioInput,
    { onProgress: progress, env: ourEnv, execArgv: ourFlags },
  )

  // ───────────── in-process figures (one core, no socket, no SQLite) ─────────────
  if (!quick) log('ours: in-process decode and verify (one core) …')
  const inproc = quick ? null : await runChild<InprocResult>(scenario('inproc'), { streamDir: stream.dir, verifySample: 10_000 } satisfies InprocInput, {
    onProgress: progress,
  })

  // ───────────── (b) the peer ─────────────
  let peer: PeerResult | null = null
  if (!flag('--no-peer') && !quick) {
    log('peer: @atproto/sync Firehose (authenticated) over the socket …')
    peer = await runChild<PeerResult>(
      scenario('peer'),
      { service: servers.wsUrl, plcUrl: servers.url, lastSeq: meta.lastSeq, timeoutSec: 1800 } satisfies PeerInput,
      { onProgress: progress },
    )
  }

  // ───────────── correctness: fast path vs reference on every frame ─────────────
  let check: CheckResult | null = null
  if (!flag('--no-check') && !quick) {
    log('check: fast path vs reference path (@atproto/repo + @atproto/crypto) on every frame, 1 in 10 also tampered …')
    check = await runChild<CheckResult>(scenario('check'), { streamDir: stream.dir, tamperEvery: 10 } satisfies CheckInput, { onProgress: progress })
  }

  // ───────────── figures ─────────────
  const best = verified.passes.reduce((a, b) => (b.elapsedSec < a.elapsedSec ? b : a))
  const first = verified.passes[0]!
  const pt = passthrough?.passes[0]
  const verifiedCommitsPerSec = best.verified / best.elapsedSec
  const peerVerifiedCommitsPerSec = peer ? peer.commits / peer.elapsedSec : null
  const figures = {
    date: startedAt.toISOString(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGb: Math.round(totalmem() / 1e9),
      freeMemGbAtStart: Math.round(freemem() / 1e9),
      node: process.version,
      loadavgAtStart: startLoad.map((x) => Math.round(x * 100) / 100),
      loadavgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    stream: {
      id: meta.id,
      frames: meta.frames,
      accounts: stream.accounts.length,
      mb: Math.round(meta.bytes / 1e6),
      ops: meta.ops,
      opsPerCommit: meta.opsPerCommit,
      p256Commits: meta.p256Commits,
      genesisCommits: meta.genesisCommits,
      repoRecordsAtStart: meta.repoRecordsAtStart,
    },
    verifiedCommitsPerSec: round(verifiedCommitsPerSec),
    peerVerifiedCommitsPerSec: peerVerifiedCommitsPerSec === null ? null : round(peerVerifiedCommitsPerSec),
    ratioToPeer: peerVerifiedCommitsPerSec ? Math.round((verifiedCommitsPerSec / peerVerifiedCommitsPerSec) * 100) / 100 : null,
    // per CPU-second of the consuming process: steadier than wall time when the machine is busy
    verifiedCommitsPerCpuSec: round(best.verified / best.cpuSec),
    peerVerifiedCommitsPerCpuSec: peer ? round(peer.commits / peer.cpuSec) : null,
    passthroughFramesPerSec: pt ? round(pt.received / pt.elapsedSec) : null,
    // the pass-through's own CPU (socket reads, decisions, cursor batches), setup included
    passthroughFramesPerCpuSec: pt ? round(pt.received / pt.cpuSec) : null,
    endToEndEventsPerSec: round(best.processed / best.elapsedSec),
    peakRssMb: round(Math.max(...verified.passes.map((p) => p.peakRssMb))),
    peakRssMbByPass: verified.passes.map((p) => round(p.peakRssMb)),
    passthroughPeakRssMb: pt ? round(pt.peakRssMb) : null,
    peerPeakRssMb: peer ? round(peer.peakRssMb) : null,
    decodeOnlyFramesPerSec: inproc ? round(inproc.decodeFramesPerSec) : null,
    passthroughDecodeOnlyFramesPerSec: inproc ? round(inproc.passthroughFramesPerSec) : null,
    verifyOnlyCommitsPerSec: inproc ? round(inproc.verifyCommitsPerSec) : null,
    verifyThreads: verified.verifyThreads,
    secp256k1Engine: verified.secp256k1Engine,
    nodeFlags: ourFlags,
    nodeEnv: ourEnv,
    passes: verified.passes.map((p) => ({
      elapsedSec: round(p.elapsedSec, 1),
      cpuSec: round(p.cpuSec, 1),
      flushSec: round(p.flushSec, 1),
      verified: p.verified,
      rejected: p.rejected,
      peakRssMb: round(p.peakRssMb),
      dbMb: round(p.dbMb),
      writtenKbPerCommit: p.writtenKbPerCommit === null ? null : round(p.writtenKbPerCommit, 1),
      writeCallsPerCommit: p.writeCallsPerCommit === null ? null : round(p.writeCallsPerCommit, 1),
      identity: p.identity,
    })),
    rejected: first.rejected,
    rejections: first.rejections,
    peer: peer && {
      commits: peer.commits,
      events: peer.events,
      errors: peer.errors,
      errorSamples: peer.errorSamples,
      elapsedSec: round(peer.elapsedSec, 1),
      cpuSec: round(peer.cpuSec, 1),
      completed: peer.completed,
    },
    backfill: { repos: backfill.repos, records: backfill.records, elapsedSec: round(backfill.elapsedSec, 1) },
    check: check && { frames: check.frames, tampered: check.tampered, agree: check.agree, disagree: check.disagree, examples: check.examples },
  }

  printTable(figures)
  if (json) console.log(JSON.stringify(figures))
  if (check && check.disagree > 0) process.exitCode = 1
  if (first.rejected > 0) process.exitCode = 1
} finally {
  await servers.close()
  rmSync(workDir, { recursive: true, force: true })
}

function round(x: number, digits = 0): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function printTable(f: any): void {
  const rows: [string, string, string][] = [
    ['fully verified commits/s (socket → SQLite)', fmt(f.verifiedCommitsPerSec), fmt(f.peerVerifiedCommitsPerSec)],
    ['ratio to @atproto/sync', f.ratioToPeer === null ? '–' : `${f.ratioToPeer}×`, '1×'],
    ['verified commits per CPU-second of the process', fmt(f.verifiedCommitsPerCpuSec), fmt(f.peerVerifiedCommitsPerCpuSec)],
    ['end-to-end events/s into SQLite', fmt(f.endToEndEventsPerSec), '–'],
    ['out-of-scope pass-through frames/s (socket)', fmt(f.passthroughFramesPerSec), '–'],
    ['out-of-scope pass-through frames per CPU-second', fmt(f.passthroughFramesPerCpuSec), '–'],
    ['pass-through decode only, frames/s (1 core)', fmt(f.passthroughDecodeOnlyFramesPerSec), '–'],
    ['full frame decode only, frames/s (1 core)', fmt(f.decodeOnlyFramesPerSec), '–'],
    ['verify only, commits/s (1 core, no socket/SQL)', fmt(f.verifyOnlyCommitsPerSec), '–'],
    ['peak RSS MB (verified run, per pass)', f.peakRssMbByPass.join(' / '), fmt(f.peerPeakRssMb)],
    ['SQLite batches, s (verified run, per pass)', f.passes.map((p: any) => p.flushSec).join(' / '), '–'],
    ['KB written per verified commit (per pass)', f.passes.map((p: any) => p.writtenKbPerCommit ?? '–').join(' / '), '–'],
    ['database MB after the pass', f.passes.map((p: any) => p.dbMb).join(' / '), '–'],
  ]
  const w0 = Math.max(...rows.map((r) => r[0].length))
  const w1 = Math.max(10, ...rows.map((r) => r[1].length))
  const out: string[] = []
  out.push('')
  out.push(`${'figure'.padEnd(w0)}  ${'malfestio-mirror'.padStart(w1)}  @atproto/sync Firehose`)
  for (const [a, b, c] of rows) out.push(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`)
  out.push('')
  out.push(
    `stream: ${f.stream.frames} #commit frames from ${f.stream.accounts} accounts (${f.stream.p256Commits} by P-256 keys, ${f.stream.genesisCommits} genesis), ` +
      `ops ${f.stream.ops.create} create / ${f.stream.ops.update} update / ${f.stream.ops.delete} delete (${f.stream.ops.malfestio} Malfestio), ` +
      `repos at start ${f.stream.repoRecordsAtStart.min}–${f.stream.repoRecordsAtStart.max} records (median ${f.stream.repoRecordsAtStart.median})`,
  )
  out.push(`machine: ${f.machine.cores} × ${f.machine.cpu}, ${f.machine.memGb} GB, Node ${f.machine.node}, load ${f.machine.loadavgAtStart.join(' ')} → ${f.machine.loadavgAtEnd.join(' ')}`)
  out.push(
    `ours: ${f.verifyThreads} verification thread(s) beside the main thread (--verify-threads), secp256k1 through ${f.secp256k1Engine}, ` +
      `node flags ${f.nodeFlags.join(' ') || '(none)'}${Object.keys(f.nodeEnv).length ? `, environment ${Object.entries(f.nodeEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''} (the peer: Node's defaults)`,
  )
  out.push(
    `identities, per pass: ${f.passes.map((p: any) => `${p.identity.fetched} fetched with their logs verified, ${p.identity.fromStore} from the backfilled database`).join(' / ')} ` +
      `(as at a restart within --identity-max-age; the peer resolves every DID from the PLC endpoint)`,
  )
  out.push(`rejected by ours: ${f.rejected}${f.peer ? `; peer errors: ${f.peer.errors}${f.peer.completed ? '' : ' (peer did not finish)'}` : ''}`)
  if (f.rejected) out.push(`  our rejections: ${JSON.stringify(f.rejections)}`)
  if (f.peer?.errors) out.push(`  peer errors: ${f.peer.errorSamples.join(' | ')}`)
  if (f.check) out.push(`check: ${f.check.agree}/${f.check.frames + f.check.tampered} verdicts agree (${f.check.tampered} tampered frames), ${f.check.disagree} disagree`)
  console.log(out.join('\n'))
}

function fmt(x: number | null): string {
  return x === null || x === undefined ? '–' : x.toLocaleString('en-US')
}
