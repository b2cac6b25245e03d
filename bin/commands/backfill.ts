/** `backfill`: find the repos holding Malfestio records and resync each one, with progress. */
import { backfillRepos, discoverRepos, exactCollections, type BackfillProgress } from '../../src/mirror/backfill.ts'
import { checkUrl, collectionMatcher, DEFAULTS, type MirrorConfig } from '../../src/mirror/config.ts'
import { createMirror, type Mirror } from '../../src/mirror/mirror.ts'
import { openDb } from '../../src/store/db.ts'
import { COMMON, NETWORK, parse, pick, UsageError } from '../args.ts'

const DID_RE = /^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%:-]+)$/

export function backfillProgressLine(p: BackfillProgress): string {
  const eta = p.etaSec === null ? '-' : p.etaSec > 90 ? `${Math.round(p.etaSec / 60)} min` : `${p.etaSec} s`
  const width = 24
  const filled = p.total ? Math.round((p.done / p.total) * width) : width
  return `backfill [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} repos, ${p.records} records, ${p.failed} failed, ETA ${eta}`
}

/** Discovers (unless DIDs are given) and resyncs into a running mirror; used by `backfill` and `sync --backfill`. */
export async function backfillInto(mirror: Mirror, config: MirrorConfig, dids: string[], json: boolean, signal?: AbortSignal): Promise<BackfillProgress> {
  let targets = dids
  if (!targets.length) {
    const found = await discoverRepos(config.service, exactCollections(config.collections))
    targets = found.dids
    process.stderr.write(`backfill: ${targets.length} repos hold ${config.collections.join(',')} (via ${found.method})\n`)
  }
  const tty = process.stderr.isTTY && !json
  let last = 0
  const result = await backfillRepos(mirror, targets, {
    concurrency: config.maxConcurrentResyncs,
    signal,
    onProgress: (p) => {
      if (tty) process.stderr.write(`\r\x1b[2K${backfillProgressLine(p)}`)
      else if (Date.now() - last > 2000 || p.done === p.total) {
        last = Date.now()
        process.stderr.write(backfillProgressLine(p) + '\n')
      }
    },
  })
  if (tty) process.stderr.write('\n')
  return result
}

export async function backfillCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...COMMON, ...NETWORK, did: { type: 'string', multiple: true } })
  const dids = (values.did as string[] | undefined) ?? []
  for (const d of dids) if (!DID_RE.test(d)) throw new UsageError(`--did ${d} is not a did:plc or did:web`)
  const collections = pick(values.collections, 'MALFESTIO_COLLECTIONS', DEFAULTS.collections.join(',')).split(',').map((s) => s.trim()).filter(Boolean)
  collectionMatcher(collections)
  const handleResolver = pick(values['handle-resolver'], 'MALFESTIO_HANDLE_RESOLVER')
  const config: MirrorConfig = {
    ...DEFAULTS,
    service: checkUrl('--relay', pick(values.relay, 'MALFESTIO_RELAY', DEFAULTS.service), ['ws:', 'wss:', 'http:', 'https:']),
    plcUrl: checkUrl('--plc', pick(values.plc, 'MALFESTIO_PLC', DEFAULTS.plcUrl), ['http:', 'https:']),
    dbPath: pick(values.db, 'MALFESTIO_DB', DEFAULTS.dbPath),
    collections,
    handleResolverUrl: handleResolver ? checkUrl('--handle-resolver', handleResolver, ['http:', 'https:']) : undefined,
  }
  const db = openDb(config.dbPath)
  const mirror = createMirror(db, config)
  const ac = new AbortController()
  const onSignal = () => ac.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const result = await backfillInto(mirror, config, dids, values.json as boolean, ac.signal)
    await mirror.close()
    if (values.json) process.stdout.write(JSON.stringify({ ...result, current: undefined }) + '\n')
    return result.failed ? 1 : 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    db.close()
  }
}
