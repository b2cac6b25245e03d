/** `capture`: record an upstream's raw frames into a capture file, with progress. */
import { captureToFile, type CaptureProgress } from '../../src/firehose/capture-run.ts'
import { checkUrl, DEFAULTS } from '../../src/mirror/config.ts'
import { COMMON, parse, pick, seqFlag, UsageError } from '../args.ts'
import { connectionWords, progressWriter } from '../progress.ts'

export function captureProgressLine(p: CaptureProgress): string {
  const conn = connectionWords(p.connection)
  const mb = (p.bytes / 1e6).toFixed(1)
  return `${conn} | ${p.framesPerSec.toFixed(0)} frames/s | ${p.frames} frames, ${mb} MB | seq ${p.firstSeq ?? '-'}..${p.lastSeq ?? '-'}${p.duplicates ? ` | ${p.duplicates} re-sent skipped` : ''}`
}

export const CAPTURE_FLAGS = {
  // no --db: a capture writes frames to a file, not a mirror
  json: COMMON.json!,
  help: COMMON.help!,
  out: { type: 'string' },
  relay: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  'idle-ms': { type: 'string' },
  'stall-ms': { type: 'string' },
  force: { type: 'boolean', default: false },
} as const

export async function captureCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, CAPTURE_FLAGS)
  if (typeof values.out !== 'string' || !values.out) throw new UsageError('capture needs --out FILE')
  const service = checkUrl('--relay', pick(values.relay, 'MALFESTIO_RELAY', DEFAULTS.service), ['ws:', 'wss:', 'http:', 'https:'])
  const from = seqFlag('from', values.from as string | undefined)
  const to = seqFlag('to', values.to as string | undefined)
  if (from !== undefined && to !== undefined && to <= from) throw new UsageError('--to must be greater than --from')
  const json = values.json as boolean
  const write = progressWriter({ json, everyMs: 5000 })
  const ac = new AbortController()
  const onSignal = () => ac.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const result = await captureToFile({
      service,
      path: values.out,
      from,
      to,
      idleMs: seqFlag('idle-ms', values['idle-ms'] as string | undefined),
      stallMs: seqFlag('stall-ms', values['stall-ms'] as string | undefined),
      overwrite: values.force as boolean,
      signal: ac.signal,
      onProgress: (p) => write(captureProgressLine(p), { final: p.done }),
    })
    const summary = {
      out: result.path,
      source: result.header.source,
      frames: result.frames,
      bytes: result.bytes,
      firstSeq: result.firstSeq,
      lastSeq: result.lastSeq,
      duplicates: result.duplicates,
      stoppedBy: result.stoppedBy,
    }
    if (json) process.stdout.write(JSON.stringify(summary) + '\n')
    else process.stderr.write(`wrote ${result.frames} frames (${result.bytes} bytes) to ${result.path}; replay with: malfestio-mirror replay --file ${result.path}\n`)
    return 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
