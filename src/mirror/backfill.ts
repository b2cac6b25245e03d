/**
 * Backfill: resync each of a list of repos (getRepo, full verification, diff applied with proofs),
 * so the mirror holds records written before any cursor window. `discover.ts` finds the list.
 */
import type { Mirror, ResyncResult } from './mirror.ts'

export interface BackfillProgress {
  total: number
  done: number
  failed: number
  records: number
  etaSec: number | null
  current?: string
}

/** One repo's outcome, for `--json`. */
export type RepoOutcome = { did: string } & ResyncResult

/** Resyncs every DID through the mirror (as many at once as the mirror allows), reporting progress. */
export async function backfillRepos(
  mirror: Mirror,
  dids: string[],
  opts: { concurrency?: number; onProgress?: (p: BackfillProgress) => void; signal?: AbortSignal; why?: string } = {},
): Promise<BackfillProgress & { repos: RepoOutcome[] }> {
  const p: BackfillProgress = { total: dids.length, done: 0, failed: 0, records: 0, etaSec: null }
  const repos: RepoOutcome[] = []
  const started = Date.now()
  const queue = [...dids]
  opts.onProgress?.({ ...p })
  const worker = async () => {
    for (let did = queue.shift(); did && !opts.signal?.aborted; did = queue.shift()) {
      p.current = did
      const result = await mirror.resync(did, opts.why ?? 'backfill')
      repos.push({ did, ...result })
      if (result.ok) p.records += result.diff.created + result.diff.updated + result.diff.unchanged
      else p.failed++
      p.done++
      const perRepo = (Date.now() - started) / p.done
      p.etaSec = Math.round((perRepo * (p.total - p.done)) / 1000)
      opts.onProgress?.({ ...p })
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 3) }, worker))
  repos.sort((a, b) => (a.did < b.did ? -1 : 1))
  return { ...p, current: undefined, repos }
}
