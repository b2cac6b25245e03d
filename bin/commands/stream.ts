/** `sync` and `replay`: run the mirror against a relay or PDS. */
import { DEFAULTS, type MirrorConfig } from '../../src/mirror/config.ts'
import { runMirror, type Progress } from '../../src/mirror/run.ts'
import { existsSync } from 'node:fs'
import { getCursor } from '../../src/store/cursor.ts'
import { openDb } from '../../src/store/db.ts'
import { readStatus } from '../../src/store/status.ts'
import { readCaptureHeader } from '../../src/firehose/capture.ts'
import { COMMON, NETWORK, networkConfig, parse, pick, seqFlag, UsageError } from '../args.ts'
import type { Mirror } from '../../src/mirror/mirror.ts'
import type { RunView } from '../../src/mirror/run.ts'
import { createLiveMetrics, portFlag, SERVE_FLAGS, serveBanner, startServing } from './serve.ts'
import { backfillInto } from './backfill.ts'
import { connectionWords, progressWriter } from '../progress.ts'
import { secp256k1EngineFailure } from '../../src/verify/signature.ts'

function baseConfig(values: Record<string, unknown>, defaultService: string = DEFAULTS.service): MirrorConfig {
  return {
    ...networkConfig(values, defaultService),
    stallMs: values['stall-ms'] ? Number(seqFlag('stall-ms', values['stall-ms'] as string)) : DEFAULTS.stallMs,
    connectAttempts:
      values['connect-attempts'] !== undefined ? Number(seqFlag('connect-attempts', values['connect-attempts'] as string)) : DEFAULTS.connectAttempts,
  }
}

function progressPrinter(json: boolean) {
  const write = progressWriter({ json, everyMs: 5000 })
  let lastState = ''
  return (p: Progress) => {
    const s = p.stats
    const line = `${connectionWords(p.connection)} | ${p.eventsPerSec.toFixed(0)} ev/s | seq ${s.lastSeq ?? '-'} cursor ${s.cursor ?? '-'} | verified ${s.verified} rejected ${s.rejected} stale ${s.stale} out-of-scope ${s.passthrough} | resyncs ${s.resyncs} | in flight ${s.inFlight}${s.identityWaiting ? ` | ${s.identityWaiting} repo(s) waiting for the DID resolver` : ''}`
    const changed = p.connection.state !== lastState
    lastState = p.connection.state
    write(line, { final: p.done, urgent: changed })
  }
}

interface ServeFlags {
  port: number
  host: string
  maxLagSeconds?: number
}

async function run(config: MirrorConfig, json: boolean, backfill = false, serve?: ServeFlags): Promise<number> {
  if (secp256k1EngineFailure) {
    // still correct, but an operator sizing a machine should know
    process.stderr.write(`warning: libsecp256k1 did not load (${secp256k1EngineFailure}); K-256 signatures are verified with node:crypto, about 6× slower\n`)
  }
  // the read API first: a port in use fails before anything is mirrored
  let serving: Awaited<ReturnType<typeof startServing>> | undefined
  const metrics = serve ? createLiveMetrics() : undefined
  let running: { mirror: Mirror; run: RunView } | undefined
  if (serve) {
    serving = await startServing({
      dbPath: config.dbPath,
      create: true,
      ...serve,
      live: {
        metrics: metrics!,
        health: () => {
          const s = running?.mirror.stats()
          return { ok: true, connection: running?.run.connection().state ?? 'starting', lastSeq: s?.lastSeq ?? null, queueDepth: s?.inFlight ?? 0 }
        },
      },
    })
    process.stderr.write(serveBanner(serving.api.url, config.dbPath, 'live') + '\n')
  }
  const ac = new AbortController()
  const onSignal = () => ac.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const result = await runMirror(config, {
      signal: ac.signal,
      hooks: metrics?.hooks,
      onProgress: progressPrinter(json),
      onMirror: (mirror, run) => {
        running = { mirror, run }
        if (metrics && serving) metrics.attach(mirror, run, serving.db)
        // backfill through the running mirror: each repo's live events wait behind its resync
        if (backfill) {
          backfillInto(mirror, config, null, json, ac.signal).catch((err) => {
            process.stderr.write(`\nbackfill failed: ${(err as Error).message}\n`)
          })
        }
      },
    })
    if (json) process.stdout.write(JSON.stringify({ stoppedBy: result.stoppedBy, ...result.stats, ...(result.capture ? { capture: result.capture } : {}) }) + '\n')
    else if (result.capture && 'held' in result.capture) {
      const c = result.capture
      process.stderr.write(`upstream queries: ${c.served} answered from the ${c.held} recorded in the file, ${c.online} over the network\n`)
    }
    return 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await serving?.api.close()
    serving?.db.close()
  }
}

export const SYNC_FLAGS = {
  ...COMMON,
  ...NETWORK,
  cursor: { type: 'string' },
  'stall-ms': { type: 'string' },
  'connect-attempts': { type: 'string' },
  backfill: { type: 'boolean', default: false },
  capture: { type: 'string' },
  serve: { type: 'string' },
  ...SERVE_FLAGS,
} as const

export async function syncCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, SYNC_FLAGS)
  const config = baseConfig(values)
  config.cursor = seqFlag('cursor', values.cursor as string | undefined)
  if (values.capture !== undefined) config.captureTo = values.capture as string
  if (!values.backfill && config.cursor === undefined && isEmptyMirror(config.dbPath)) {
    process.stderr.write(
      'empty database: sync mirrors what happens from now on. Run `malfestio-mirror backfill` (or `sync --backfill`) to fetch the records written before.\n',
    )
  }
  const serve =
    values.serve === undefined
      ? undefined
      : {
          port: portFlag('serve', values.serve as string),
          host: pick(values.host, 'MALFESTIO_HOST', '127.0.0.1'),
          maxLagSeconds: values['max-lag'] === undefined ? undefined : seqFlag('max-lag', values['max-lag'] as string),
        }
  if (serve === undefined && (values.host !== undefined || values['max-lag'] !== undefined)) throw new UsageError('--host and --max-lag go with --serve PORT')
  return run(config, values.json as boolean, values.backfill as boolean, serve)
}

function storedCursor(dbPath: string, service: string): number | undefined {
  if (!existsSync(dbPath)) return undefined
  const db = openDb(dbPath)
  try {
    return getCursor(db, service)
  } finally {
    db.close()
  }
}

function isEmptyMirror(dbPath: string): boolean {
  if (!existsSync(dbPath)) return true
  const db = openDb(dbPath)
  try {
    return readStatus(db).repos.total === 0
  } finally {
    db.close()
  }
}

export const REPLAY_FLAGS = {
  ...COMMON,
  ...NETWORK,
  from: { type: 'string' },
  to: { type: 'string' },
  file: { type: 'string' },
  'idle-ms': { type: 'string', default: '3000' },
  'stall-ms': { type: 'string' },
  'connect-attempts': { type: 'string' },
} as const

export async function replayCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, REPLAY_FLAGS)
  if (values.file !== undefined) return replayFile(values)
  if (values.from === undefined) throw new UsageError('replay needs --from SEQ (or --file FILE)')
  const config = baseConfig(values)
  config.cursor = seqFlag('from', values.from as string)
  config.stopAtSeq = seqFlag('to', values.to as string | undefined)
  config.idleMs = seqFlag('idle-ms', values['idle-ms'] as string)
  if (config.stopAtSeq !== undefined && config.stopAtSeq <= config.cursor!) throw new UsageError('--to must be greater than --from')
  return run(config, values.json as boolean)
}

/** `replay --file`: the frames of a capture file through the same pipeline; the source is the file's. */
async function replayFile(values: Record<string, unknown>): Promise<number> {
  const file = values.file as string
  // the header names the upstream: the cursor is stored under it and resyncs / getRepo go there
  const header = await readCaptureHeader(file)
  const config = baseConfig(values, header.source)
  config.captureFile = file
  // like sync, resume after the stored cursor (frames the mirror already has are no-ops); --from forces
  const from = seqFlag('from', values.from as string | undefined)
  config.cursor = from ?? (storedCursor(config.dbPath, config.service) === undefined ? (header.cursor ?? 0) : undefined)
  config.stopAtSeq = seqFlag('to', values.to as string | undefined)
  config.idleMs = undefined
  if (config.stopAtSeq !== undefined && config.cursor !== undefined && config.stopAtSeq <= config.cursor) throw new UsageError('--to must be greater than --from')
  process.stderr.write(`replaying ${file}: frames from ${header.source} (captured ${header.createdAt}${header.cursor === null ? '' : `, after seq ${header.cursor}`})\n`)
  return run(config, values.json as boolean)
}
