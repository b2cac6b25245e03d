/**
 * `backfill` and `resync`: resync repos from upstream (getRepo, fully verified, the difference applied
 * with proofs), with a progress bar on stderr. `backfill` first asks the upstream which repos hold
 * records in scope; `resync` takes the repos to heal (`--did`, or every `--desynchronized` one).
 */
import { backfillRepos, type BackfillProgress, type RepoOutcome } from '../../src/mirror/backfill.ts'
import type { MirrorConfig } from '../../src/mirror/config.ts'
import { discoverRepos, type DiscoveryMethod } from '../../src/mirror/discover.ts'
import { createMirror, type Mirror } from '../../src/mirror/mirror.ts'
import { openDb } from '../../src/store/db.ts'
import { listRepos } from '../../src/store/repos.ts'
import { COMMON, didFlag, NETWORK, networkConfig, parse, UsageError } from '../args.ts'
import { progressWriter } from '../progress.ts'

export function backfillProgressLine(p: BackfillProgress): string {
  const eta = p.etaSec === null ? '-' : p.etaSec > 90 ? `${Math.round(p.etaSec / 60)} min` : `${p.etaSec} s`
  const width = 24
  const filled = p.total ? Math.round((p.done / p.total) * width) : width
  return `resync [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} repos, ${p.records} records, ${p.failed} failed, ETA ${eta}`
}

export interface BackfillReport extends BackfillProgress {
  /** how the repos were found; absent when they were named */
  method?: DiscoveryMethod
  repos: RepoOutcome[]
}

/** Discovers (unless DIDs are given) and resyncs into a running mirror; used by `backfill`, `resync` and `sync --backfill`. */
export async function backfillInto(
  mirror: Mirror,
  config: MirrorConfig,
  dids: string[] | null,
  json: boolean,
  signal?: AbortSignal,
): Promise<BackfillReport> {
  const write = progressWriter({ json, everyMs: 2000 })
  const line = (text: string, final: boolean) => write(text, { final })
  let targets = dids
  let method: DiscoveryMethod | undefined
  if (targets === null) {
    const found = await discoverRepos(config.service, config.collections, {
      signal,
      onProgress: (p) => line(`discovering: ${p.checked} repos checked, ${p.found} hold ${config.collections.join(',')}`, false),
    })
    targets = found.dids
    method = found.method
    line(`backfill: ${targets.length} repos hold ${config.collections.join(',')} (found via ${found.method} on ${config.service})`, true)
  }
  const result = await backfillRepos(mirror, targets, {
    concurrency: config.maxConcurrentResyncs,
    signal,
    why: dids === null ? 'backfill' : 'resync command',
    onProgress: (p) => line(backfillProgressLine(p), p.done === p.total),
  })
  return { ...(method ? { method } : {}), ...result }
}

function outcomeLine(r: RepoOutcome): string {
  if (!r.ok) return `${r.did}  FAILED  ${r.error}`
  const d = r.diff
  return `${r.did}  rev ${r.rev}  created ${d.created}  updated ${d.updated}  deleted ${d.deleted}  unchanged ${d.unchanged}`
}

export const BACKFILL_FLAGS = { ...COMMON, ...NETWORK, did: { type: 'string' as const, multiple: true } }
export const RESYNC_FLAGS = { ...BACKFILL_FLAGS, desynchronized: { type: 'boolean', default: false } } as const

function namedDids(values: Record<string, unknown>): string[] {
  const dids = (values.did as string[] | undefined) ?? []
  for (const d of dids) didFlag(d)
  return [...new Set(dids)]
}

/** Opens the database, runs `work` with a mirror, prints the report; exit 1 when a repo failed. */
async function withMirror(config: MirrorConfig, json: boolean, work: (mirror: Mirror, signal: AbortSignal) => Promise<BackfillReport>): Promise<number> {
  const db = openDb(config.dbPath)
  const mirror = createMirror(db, config)
  const ac = new AbortController()
  const onSignal = () => ac.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const report = await work(mirror, ac.signal)
    await mirror.close()
    if (json) process.stdout.write(JSON.stringify(report) + '\n')
    else for (const r of report.repos) process.stdout.write(outcomeLine(r) + '\n')
    return report.failed || report.done < report.total ? 1 : 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    db.close()
  }
}

export async function backfillCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, BACKFILL_FLAGS)
  const dids = namedDids(values)
  const config = networkConfig(values)
  return withMirror(config, values.json as boolean, (mirror, signal) => backfillInto(mirror, config, dids.length ? dids : null, values.json as boolean, signal))
}

export async function resyncCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, RESYNC_FLAGS)
  const named = namedDids(values)
  if (!named.length && !values.desynchronized) throw new UsageError('resync needs --did DID (repeatable) or --desynchronized')
  const config = networkConfig(values)
  return withMirror(config, values.json as boolean, async (mirror, signal) => {
    const dids = new Set(named)
    if (values.desynchronized) {
      // read through the mirror's own connection: the repos a crash or a failed resync left behind
      const db = openDb(config.dbPath)
      try {
        for (const r of [...listRepos(db, 'desynchronized'), ...listRepos(db, 'resyncing')]) dids.add(r.did)
      } finally {
        db.close()
      }
    }
    return backfillInto(mirror, config, [...dids].sort(), values.json as boolean, signal)
  })
}
