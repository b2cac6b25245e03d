/**
 * Backfill: find the repos that hold records in scope and resync each one (getRepo, full
 * verification), so the mirror holds records written before any cursor window.
 * Discovery uses `com.atproto.sync.listReposByCollection` (relays; one exact NSID per call) and falls
 * back to `listRepos` + `describeRepo` where the upstream lacks it (a PDS).
 */
import { httpBase, MALFESTIO_COLLECTIONS } from './config.ts'
import type { Mirror } from './mirror.ts'

export interface BackfillProgress {
  total: number
  done: number
  failed: number
  records: number
  etaSec: number | null
  current?: string
}

export class DiscoveryError extends Error {
  readonly code = 'discovery-failed'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DiscoveryError'
  }
}

/** The exact NSIDs to ask for: listReposByCollection takes no wildcards. */
export function exactCollections(patterns: string[]): string[] {
  const out = new Set<string>()
  for (const p of patterns) {
    if (!p.endsWith('.*')) out.add(p)
    else for (const c of MALFESTIO_COLLECTIONS) if (c.startsWith(p.slice(0, -1))) out.add(c)
  }
  if (!out.size) throw new DiscoveryError(`no exact NSID in ${patterns.join(',')}: listReposByCollection needs exact collections`)
  return [...out]
}

async function getJson(url: URL): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) })
  const text = await res.text()
  let body: any = null
  try {
    body = JSON.parse(text)
  } catch {
    body = { message: text.slice(0, 200) }
  }
  return { status: res.status, body }
}

const unsupported = (r: { status: number; body: any }) =>
  r.status === 404 || r.status === 501 || r.body?.error === 'MethodNotImplemented' || r.body?.error === 'XRPCNotSupported'

/** DIDs of repos holding any of `collections`, from the upstream's own indexes. */
export async function discoverRepos(service: string, collections: string[]): Promise<{ dids: string[]; method: string }> {
  const base = httpBase(service)
  const dids = new Set<string>()
  let fallback = false
  for (const collection of collections) {
    let cursor: string | undefined
    do {
      const url = new URL(`${base}/xrpc/com.atproto.sync.listReposByCollection`)
      url.searchParams.set('collection', collection)
      url.searchParams.set('limit', '2000')
      if (cursor) url.searchParams.set('cursor', cursor)
      const r = await getJson(url)
      if (unsupported(r)) {
        fallback = true
        break
      }
      if (r.status !== 200) throw new DiscoveryError(`listReposByCollection ${collection}: HTTP ${r.status} ${r.body?.error ?? ''} ${r.body?.message ?? ''}`)
      for (const repo of r.body.repos ?? []) if (typeof repo?.did === 'string') dids.add(repo.did)
      cursor = typeof r.body.cursor === 'string' && r.body.repos?.length ? r.body.cursor : undefined
    } while (cursor)
    if (fallback) break
  }
  if (!fallback) return { dids: [...dids].sort(), method: 'listReposByCollection' }

  // a PDS: walk its repos and ask each which collections it holds
  const wanted = new Set(collections)
  let cursor: string | undefined
  do {
    const url = new URL(`${base}/xrpc/com.atproto.sync.listRepos`)
    url.searchParams.set('limit', '1000')
    if (cursor) url.searchParams.set('cursor', cursor)
    const r = await getJson(url)
    if (r.status !== 200) throw new DiscoveryError(`listRepos: HTTP ${r.status} ${r.body?.error ?? ''} ${r.body?.message ?? ''}`)
    for (const repo of r.body.repos ?? []) {
      if (typeof repo?.did !== 'string' || repo.active === false) continue
      const d = new URL(`${base}/xrpc/com.atproto.repo.describeRepo`)
      d.searchParams.set('repo', repo.did)
      const desc = await getJson(d)
      if (desc.status === 200 && (desc.body.collections ?? []).some((c: string) => wanted.has(c))) dids.add(repo.did)
    }
    cursor = typeof r.body.cursor === 'string' && r.body.repos?.length ? r.body.cursor : undefined
  } while (cursor)
  return { dids: [...dids].sort(), method: 'listRepos+describeRepo' }
}

/** Resyncs every DID through the mirror (several at once), reporting progress. */
export async function backfillRepos(
  mirror: Mirror,
  dids: string[],
  opts: { concurrency?: number; onProgress?: (p: BackfillProgress) => void; signal?: AbortSignal } = {},
): Promise<BackfillProgress> {
  const p: BackfillProgress = { total: dids.length, done: 0, failed: 0, records: 0, etaSec: null }
  const started = Date.now()
  const queue = [...dids]
  const worker = async () => {
    for (let did = queue.shift(); did && !opts.signal?.aborted; did = queue.shift()) {
      p.current = did
      const diff = await mirror.resync(did, 'backfill')
      if (diff) p.records += diff.created + diff.updated + diff.unchanged
      else p.failed++
      p.done++
      const perRepo = (Date.now() - started) / p.done
      p.etaSec = Math.round((perRepo * (p.total - p.done)) / 1000)
      opts.onProgress?.({ ...p })
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 3) }, worker))
  return p
}
