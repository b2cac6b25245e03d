/**
 * Which repos hold records in scope, asked of the upstream's own indexes.
 *
 * Discovery asks the upstream what it is. A relay answers `com.atproto.sync.listReposByCollection`
 * (one exact NSID per call, so once per Malfestio NSID). A PDS does not (the reference PDS has no such
 * index, and proxies unknown methods to its AppView, which asks for auth): a PDS is recognised by
 * `com.atproto.server.describeServer`, and only then are its repos walked with `listRepos` +
 * `describeRepo`. A relay is never walked that way: it hosts millions of repos and no describeRepo.
 */
import { httpBase, MALFESTIO_COLLECTIONS } from './config.ts'
import { bodySummary } from './http-body.ts'

export class DiscoveryError extends Error {
  readonly code = 'discovery-failed'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DiscoveryError'
  }
}

export type DiscoveryMethod = 'listReposByCollection' | 'listRepos+describeRepo'

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

async function getJson(url: URL, signal?: AbortSignal): Promise<{ status: number; body: any }> {
  let res: Response
  try {
    const timeout = AbortSignal.timeout(30_000)
    res = await fetch(url, { signal: signal ? AbortSignal.any([timeout, signal]) : timeout })
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause
    const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined
    const why = detail ? `${(err as Error).message} (${detail})` : (err as Error).message
    throw new DiscoveryError(`cannot reach ${url.origin}${url.pathname}: ${why}`, { cause: err })
  }
  const text = await res.text()
  let body: any = null
  try {
    body = JSON.parse(text)
  } catch {
    body = { message: bodySummary(text) }
  }
  return { status: res.status, body }
}

const describeFailure = (r: { status: number; body: any }) => [`HTTP ${r.status}`, r.body?.error, r.body?.message].filter(Boolean).join(' ')

/** True when the upstream describes itself as a PDS (`describeServer` with a DID and user domains). */
export async function isPds(service: string, signal?: AbortSignal): Promise<boolean> {
  const r = await getJson(new URL(`${httpBase(service)}/xrpc/com.atproto.server.describeServer`), signal)
  return r.status === 200 && typeof r.body?.did === 'string' && Array.isArray(r.body?.availableUserDomains)
}

export interface DiscoveryOptions {
  /** called as repos are found (a PDS walk checks each repo: this is its progress) */
  onProgress?: (p: { checked: number; found: number }) => void
  signal?: AbortSignal
}

/**
 * DIDs of repos holding any of `patterns` (NSIDs or `prefix.*` over the Malfestio NSIDs), from the
 * upstream's own indexes.
 * @throws {DiscoveryError} when the upstream answers neither as a relay nor as a PDS
 */
export async function discoverRepos(
  service: string,
  patterns: string[],
  opts: DiscoveryOptions = {},
): Promise<{ dids: string[]; method: DiscoveryMethod }> {
  const collections = exactCollections(patterns)
  const base = httpBase(service)
  if (await isPds(service, opts.signal)) return { dids: await walkPds(base, new Set(collections), opts), method: 'listRepos+describeRepo' }

  const dids = new Set<string>()
  for (const collection of collections) {
    let cursor: string | undefined
    do {
      if (opts.signal?.aborted) throw new DiscoveryError('discovery aborted')
      const url = new URL(`${base}/xrpc/com.atproto.sync.listReposByCollection`)
      url.searchParams.set('collection', collection)
      url.searchParams.set('limit', '2000')
      if (cursor) url.searchParams.set('cursor', cursor)
      const r = await getJson(url, opts.signal)
      if (r.status !== 200) {
        throw new DiscoveryError(
          `${base} is not a PDS and its listReposByCollection failed for ${collection} (${describeFailure(r)}): ` +
            'point --relay at a relay that serves it (e.g. https://bsky.network), or name the repos with --did',
        )
      }
      for (const repo of r.body?.repos ?? []) if (typeof repo?.did === 'string') dids.add(repo.did)
      cursor = typeof r.body?.cursor === 'string' && r.body.repos?.length ? r.body.cursor : undefined
      opts.onProgress?.({ checked: dids.size, found: dids.size })
    } while (cursor)
  }
  return { dids: [...dids].sort(), method: 'listReposByCollection' }
}

/** A PDS: walk its active repos and ask each which collections it holds. */
async function walkPds(base: string, wanted: Set<string>, opts: DiscoveryOptions): Promise<string[]> {
  const dids = new Set<string>()
  let checked = 0
  let cursor: string | undefined
  do {
    if (opts.signal?.aborted) throw new DiscoveryError('discovery aborted')
    const url = new URL(`${base}/xrpc/com.atproto.sync.listRepos`)
    url.searchParams.set('limit', '1000')
    if (cursor) url.searchParams.set('cursor', cursor)
    const r = await getJson(url, opts.signal)
    if (r.status !== 200) throw new DiscoveryError(`listRepos on ${base}: ${describeFailure(r)}`)
    for (const repo of r.body?.repos ?? []) {
      if (typeof repo?.did !== 'string' || repo.active === false) continue
      const d = new URL(`${base}/xrpc/com.atproto.repo.describeRepo`)
      d.searchParams.set('repo', repo.did)
      const desc = await getJson(d, opts.signal)
      checked++
      if (desc.status === 200 && (desc.body?.collections ?? []).some((c: string) => wanted.has(c))) dids.add(repo.did)
      opts.onProgress?.({ checked, found: dids.size })
    }
    cursor = typeof r.body?.cursor === 'string' && r.body.repos?.length ? r.body.cursor : undefined
  } while (cursor)
  return [...dids].sort()
}
