import { availableParallelism } from 'node:os'
import type { CommitCheckOptions } from '../verify/commit.ts'
import { scopeKeyRanges } from '../verify/mst.ts'

/**
 * Every knob of the mirror in one typed config; the CLI parses flags (and env vars) into it and
 * nothing more.
 */

export interface MirrorConfig {
  /** relay or PDS: ws(s):// or http(s):// */
  service: string
  dbPath: string
  plcUrl: string
  /** NSIDs or `prefix.*` */
  collections: string[]
  /** start after this seq instead of the stored cursor */
  cursor?: number
  /** stop once this seq has been processed (replay --to) */
  stopAtSeq?: number
  /** stop after this much silence once caught up (replay) */
  idleMs?: number
  /** events per SQLite transaction */
  batchSize: number
  /** longest a processed event waits before its batch is written */
  batchMs: number
  /** events in flight (verifying or queued) before the socket is paused */
  maxInFlight: number
  /** events of one repo in flight (e.g. waiting for its DID to resolve) before the socket is paused */
  maxInFlightPerRepo: number
  /** bytes of blocks held by events in flight before the socket is paused */
  maxInFlightBytes: number
  /** no frame for this long → reconnect */
  stallMs: number
  /** failed attempts before giving up when the upstream has never answered in this run (0 = retry forever) */
  connectAttempts: number
  /**
   * first wait before resolving a DID again when the resolver is unavailable (timeout, 5xx, refused);
   * doubles per attempt, with jitter. The repo's events wait meanwhile; they are never rejected for it.
   */
  identityRetryMs: number
  /** cap of that wait */
  identityRetryMaxMs: number
  /** minimum spacing between resync attempts of one repo (doubles per failure, up to an hour) */
  resyncBackoffMs: number
  /** resyncs (getRepo + full verification) running at once */
  maxConcurrentResyncs: number
  /** handle resolution through a PDS's resolveHandle (tests, private networks) instead of DNS/HTTPS */
  handleResolverUrl?: string
  /** read frames from this capture file instead of the network (`replay --file`); `service` is its source */
  captureFile?: string
  /** also write the frames as received, and the upstream answers used (getRepo, getRepoStatus), to this capture file (`sync --capture`) */
  captureTo?: string
  /** replace an existing `captureTo` file */
  captureOverwrite?: boolean
  /**
   * did:plc keys from the directory's document as served, without verifying the DID's operation log
   * (--trust-plc-directory). Off by default: keys, handle and PDS come from the verified log.
   */
  trustPlcDirectory: boolean
  /**
   * how old a DID's identity proven from its verified PLC log and kept in the store may be to be used
   * again when the DID is first met after a start, instead of fetching and verifying the log again
   * (--identity-max-age, in hours); 0 = always fetch
   */
  identityMaxAgeMs: number
  /**
   * worker threads that verify commits (block hashes, signature, MST proofs, inversion), each DID
   * always on the same one; 0 = on the main thread. Default: one per core beyond the main thread's
   * (so none on one core).
   */
  verifyThreads: number
}

export const DEFAULTS = {
  service: 'wss://bsky.network',
  dbPath: './malfestio-mirror.db',
  plcUrl: 'https://plc.directory',
  collections: ['org.stormlightlabs.malfestio.*'],
  batchSize: 500,
  batchMs: 250,
  maxInFlight: 1000,
  maxInFlightPerRepo: 500,
  maxInFlightBytes: 64 * 1024 * 1024,
  stallMs: 60_000,
  connectAttempts: 5,
  identityRetryMs: 500,
  identityRetryMaxMs: 30_000,
  resyncBackoffMs: 30_000,
  maxConcurrentResyncs: 3,
  trustPlcDirectory: false,
  // indigo's identity cache keeps a hit as long
  identityMaxAgeMs: 24 * 3_600_000,
  // on one core a thread would only add the messages: verification stays on the main thread there
  verifyThreads: availableParallelism() - 1,
} satisfies Partial<MirrorConfig>

export const MALFESTIO_COLLECTIONS = [
  'org.stormlightlabs.malfestio.deck',
  'org.stormlightlabs.malfestio.card',
  'org.stormlightlabs.malfestio.note',
  'org.stormlightlabs.malfestio.collection',
  'org.stormlightlabs.malfestio.source.article',
  'org.stormlightlabs.malfestio.source.lecture',
  'org.stormlightlabs.malfestio.thread.comment',
]

const NSID_RE = /^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+$/

export const isNsid = (s: string): boolean => NSID_RE.test(s)

export class ConfigError extends Error {
  readonly code = 'bad-config'
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** Builds the scope test from `nsid` and `prefix.*` patterns. */
export function collectionMatcher(patterns: string[]): (collection: string) => boolean {
  const exact = new Set<string>()
  const prefixes: string[] = []
  for (const p of patterns) {
    const base = p.endsWith('.*') ? p.slice(0, -2) : p
    if (!NSID_RE.test(base) && !(p.endsWith('.*') && /^[a-zA-Z][a-zA-Z0-9-]*$/.test(base))) {
      throw new ConfigError(`--collections: ${p} is not an NSID or prefix.*`)
    }
    if (p.endsWith('.*')) prefixes.push(base + '.')
    else exact.add(p)
  }
  return (c) => exact.has(c) || prefixes.some((p) => c.startsWith(p))
}

/** What a commit's verification needs of the scope: which collections' records to check, and their MST keys. */
export function commitScope(patterns: string[]): Required<Pick<CommitCheckOptions, 'inScope' | 'scopeKeys'>> {
  return { inScope: collectionMatcher(patterns), scopeKeys: scopeKeyRanges(patterns) }
}

/** Checks a service URL and returns it normalised (no trailing slash). */
export function checkUrl(flag: string, value: string, protocols: string[]): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`${flag}: ${value} is not a URL`)
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${flag}: ${value} must use ${protocols.map((p) => p.replace(':', '')).join(' or ')}`)
  }
  if (url.search || url.hash || url.username || url.password) throw new ConfigError(`${flag}: ${value} must not carry a query, fragment or credentials`)
  return url.toString().replace(/\/+$/, '')
}

/** http(s) base URL of a ws(s) or http(s) service (for XRPC queries such as getRepo). */
export const httpBase = (service: string): string => service.replace(/^ws(s?):/, 'http$1:').replace(/\/+$/, '')
