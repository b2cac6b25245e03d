/**
 * DID resolution for the verifier: DID → current atproto signing key (+ handle claim, PDS endpoint),
 * with a bounded TTL cache, and handle verification (the handle must resolve back to the DID).
 *
 * No SQL here. Documents are fetched directly (did:plc from the configured PLC directory, did:web from
 * `https://<host>/.well-known/did.json`, plain http only for localhost) because `@atproto/identity`'s
 * resolvers blur what callers must tell apart: did:web answers any non-2xx with "not found", and a
 * PLC tombstone looks like a missing DID or a generic error. Parsing uses `@atproto/common-web`'s
 * document helpers (`didDocument` schema, `getSigningKey`, `getHandle`, `getPdsEndpoint`) and
 * `@atproto/crypto`'s key formats; `@atproto/identity` (the same helpers behind one entry) is loaded
 * only for a handle lookup, because its entry also loads its SSRF-safe fetch, three copies of undici
 * (≈ 20 MB of RSS: the mirror loads it at the first new DID whose handle it checks by DNS / HTTPS,
 * and never with `--handle-resolver`).
 *
 * With `verifyPlcLog`, a did:plc's key, handle and PDS come from its operation log
 * (`/{did}/log/audit`), verified here (plc-log.ts) instead of trusted from the directory's document;
 * the document is still fetched, and where it disagrees with the log the answer says so (`mismatch`).
 * A verified log is cached without expiry: only a forced resolve (an #identity event, a signature that
 * fails) fetches and verifies it again. `prime` takes one proven earlier (the mirror's store keeps
 * them) on the same terms.
 *
 * Errors are `IdentityError`s with a `code`. Only `resolver-unavailable` is transient (timeouts,
 * connection failures, 5xx/429): callers retry later and must NOT reject on it. The other codes are
 * definite answers from the authority.
 */
import { didDocument, getHandle, getPdsEndpoint, getSigningKey, type DidDocument } from '@atproto/common-web'
import { formatDidKey, multibaseToBytes, P256_JWT_ALG, parseMultikey, SECP256K1_JWT_ALG } from '@atproto/crypto'
import { PlcLogError, verifyPlcAuditLog, type KeyEpoch, type VerifiedPlcLog } from './plc-log.ts'
import { assertUsableDidKey } from './signature.ts'
import type { ReasonCode } from './reasons.ts'

export type IdentityErrorCode =
  | 'did-not-found' // the authority answered: no such DID (404, malformed DID, did:web not served)
  | 'did-tombstoned' // the PLC directory says the DID was tombstoned (410, or 404 "not available")
  | 'no-signing-key' // the document has no usable #atproto verification method
  | 'bad-did-document' // the document is not JSON, not a DID document, or names another DID
  | 'unsupported-did-method' // not did:plc / did:web (or a did:web form atproto does not allow)
  | 'plc-log-invalid' // the directory's operation log for the DID does not verify (verifyPlcLog)
  | 'resolver-unavailable' // transient: timeout, connection refused, 5xx, 429 — retry later

export const TRANSIENT_IDENTITY_ERRORS: readonly IdentityErrorCode[] = ['resolver-unavailable']

export class IdentityError extends Error {
  readonly code: IdentityErrorCode
  readonly did: string
  /** HTTP status from the authority, when there was one. */
  readonly status?: number
  constructor(code: IdentityErrorCode, did: string, message: string, opts: { status?: number; cause?: unknown } = {}) {
    super(`${code}: ${did}: ${message}`, opts.cause !== undefined ? { cause: opts.cause } : undefined)
    this.name = 'IdentityError'
    this.code = code
    this.did = did
    if (opts.status !== undefined) this.status = opts.status
  }
  /** True when the failure says nothing about the DID (retry later, do not reject). */
  get transient(): boolean {
    return TRANSIENT_IDENTITY_ERRORS.includes(this.code)
  }
}

export const isIdentityError = (err: unknown): err is IdentityError => err instanceof IdentityError

/** The rejection reason for a commit whose author's identity could not be established. */
export function identityReason(err: IdentityError): ReasonCode {
  switch (err.code) {
    case 'did-tombstoned':
      return 'did-tombstoned'
    case 'plc-log-invalid':
      return 'plc-log-invalid'
    case 'unsupported-did-method':
      return err.did.startsWith('did:web:') ? 'did-web-unsupported' : 'identity-unresolved'
    default:
      return 'identity-unresolved'
  }
}

/** Where a resolved identity's key, handle and PDS come from. */
export type KeySource = 'plc-log' | 'plc-directory' | 'did-web'

/** The directory's document disagrees with the DID's verified operation log. */
export interface DocMismatch {
  /** what the served document says (absent fields: it says nothing usable) */
  served: { signingKey?: string; handle?: string; pds?: string }
  fields: ('signingKey' | 'handle' | 'pds' | 'document')[]
  message: string
}

/**
 * What the verifier takes from a DID's verified operation log: its key history and where it ends. A
 * whole `VerifiedPlcLog` is one; so is the part of one the store keeps (mirror/stored-identity.ts).
 */
export interface IdentityKeyLog {
  /** signing-key history, oldest first */
  keys: KeyEpoch[]
  /** the key of the last valid operation */
  signingKey: string | null
  /** the last valid operation */
  lastOp: { cid: string }
}

export type ResolvedIdentity = {
  did: string
  /** The current atproto signing key, as did:key (compressed, multicodec form). */
  signingKey: string
  /** The handle the document claims (first at:// alias), lowercased; not verified. */
  handle?: string
  /** The #atproto_pds service endpoint. */
  pds?: string
  /** The DID document as served. */
  doc: unknown
  /** When the document was fetched (ms since epoch). */
  resolvedAt: number
  source: KeySource
  /** did:plc with verifyPlcLog: the verified operation log (key history, last op) */
  log?: IdentityKeyLog
  /** did:plc with verifyPlcLog: how the served document disagrees with the log, if it does */
  mismatch?: DocMismatch
}

export type HandleLookup = (handle: string) => Promise<string | undefined>

export type IdentityResolverOptions = {
  /** PLC directory base URL (e.g. https://plc.directory). */
  plcUrl: string
  /** fetch for DID documents (default globalThis.fetch; http: is used only for localhost did:web). */
  fetch?: typeof fetch
  /** Per-request timeout (default 5000 ms). */
  timeoutMs?: number
  /** How long a resolved document is served from cache (default 10 min). */
  cacheTtlMs?: number
  /** Cache capacity; least recently used entries are evicted first (default 10 000). */
  cacheMax?: number
  /**
   * Handle → DID lookup used by verifyHandle. Default: DNS TXT `_atproto.<handle>`, then
   * `https://<handle>/.well-known/atproto-did` (@atproto/identity's HandleResolver, SSRF-protected).
   * Point `.test` handles at a dev PDS with `pdsHandleResolver(pdsUrl)`.
   */
  resolveHandle?: HandleLookup
  /** Clock (ms), for tests. */
  now?: () => number
  /** Largest DID document accepted (default 256 KiB). */
  maxDocBytes?: number
  /**
   * did:plc: take key, handle and PDS from the verified operation log instead of the directory's
   * document (default false here; the mirror turns it on unless --trust-plc-directory).
   */
  verifyPlcLog?: boolean
  /** Largest audit log accepted (default 4 MiB). */
  maxLogBytes?: number
  /**
   * DIDs fetched (and their logs verified) at once; the rest wait their turn (default 16). A mirror
   * starting on a busy stream meets thousands of new DIDs within a second: unbounded, that was
   * thousands of requests at the directory at once and hundreds of MB of responses in memory.
   */
  maxConcurrentFetches?: number
}

export type IdentityResolverStats = {
  /** resolve() calls */
  calls: number
  /** resolve() calls answered from cache */
  cacheHits: number
  /** resolve() calls that joined an identical in-flight fetch */
  joined: number
  /** identities fetched from the network (a document, plus its audit log with verifyPlcLog) */
  fetches: number
  /** audit logs verified, and the time spent verifying them (ms, CPU on this thread) */
  logsVerified: number
  logVerifyMs: number
  /** identities taken from prime() */
  primed: number
  /** resolve() calls that ended in an IdentityError, by code */
  errors: Partial<Record<IdentityErrorCode, number>>
  /** entries in the cache */
  size: number
  evictions: number
}

export interface IdentityResolver {
  /** The DID's current identity; `force` skips the cache (after #identity, or a signature failure). */
  resolve(did: string, opts?: { force?: boolean }): Promise<ResolvedIdentity>
  /** The cached identity, if fresh, without any network access (does not count as a call). */
  peek(did: string): ResolvedIdentity | undefined
  /**
   * Caches an identity proven elsewhere (a verified log the store kept) as if fetched, unless the DID
   * has a fresh entry or a fetch under way; a later fetch replaces it. True when it was taken.
   */
  prime(value: ResolvedIdentity): boolean
  /** True iff `handle` resolves back to `did` (false on any lookup failure). */
  verifyHandle(did: string, handle: string): Promise<boolean>
  /** The handle lookup in use (handle → DID or undefined). */
  resolveHandle(handle: string): Promise<string | undefined>
  invalidate(did: string): void
  clear(): void
  stats(): IdentityResolverStats
}

const DID_PLC_RE = /^did:plc:[a-z2-7]{24}$/
const DID_WEB_RE = /^did:web:[a-zA-Z0-9._%-]+$/
const HANDLE_RE = /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/** `gen` orders fetches: an older fetch finishing late never overwrites a newer answer. */
type CacheEntry = { value: ResolvedIdentity; expiresAt: number; gen: number }

export function createIdentityResolver(opts: IdentityResolverOptions): IdentityResolver {
  const doFetch = opts.fetch ?? globalThis.fetch
  const timeoutMs = opts.timeoutMs ?? 5_000
  const ttl = opts.cacheTtlMs ?? 10 * 60_000
  const max = Math.max(0, opts.cacheMax ?? 10_000)
  const now = opts.now ?? Date.now
  const maxDocBytes = opts.maxDocBytes ?? 256 * 1024
  const maxLogBytes = opts.maxLogBytes ?? 4 * 1024 * 1024
  const verifyPlcLog = opts.verifyPlcLog ?? false
  const plcUrl = opts.plcUrl.endsWith('/') ? opts.plcUrl : `${opts.plcUrl}/`
  const lookupHandle: HandleLookup = opts.resolveHandle ?? defaultHandleResolver({ timeoutMs })

  const cache = new Map<string, CacheEntry>()
  const inflight = new Map<string, Promise<ResolvedIdentity>>()
  const maxFetches = Math.max(1, opts.maxConcurrentFetches ?? 16)
  let fetching = 0
  const turns: (() => void)[] = []
  const limited = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (fetching >= maxFetches) await new Promise<void>((r) => turns.push(r))
    else fetching++
    try {
      return await fn()
    } finally {
      // hand the slot straight to the next waiter (the count stays), or give it back
      const next = turns.shift()
      if (next) next()
      else fetching--
    }
  }
  const counters = { calls: 0, cacheHits: 0, joined: 0, fetches: 0, primed: 0, evictions: 0, logsVerified: 0, logVerifyMs: 0 }
  const errors: Partial<Record<IdentityErrorCode, number>> = {}

  let generation = 0

  const fresh = (did: string): CacheEntry | undefined => {
    const hit = cache.get(did)
    if (!hit) return undefined
    if (hit.expiresAt <= now()) {
      cache.delete(did)
      return undefined
    }
    return hit
  }

  const remember = (value: ResolvedIdentity, gen: number): void => {
    if (max === 0) return
    const prev = cache.get(value.did)
    if (prev && prev.gen > gen) return
    cache.delete(value.did)
    // a verified log stays until something asks for it again (#identity, a failed signature)
    cache.set(value.did, { value, expiresAt: value.log ? Infinity : now() + ttl, gen })
    while (cache.size > max) {
      const oldest = cache.keys().next().value as string
      cache.delete(oldest)
      counters.evictions++
    }
  }

  const fetchDoc = async (did: string, url: URL, method: 'plc' | 'web', limit = maxDocBytes): Promise<unknown> => {
    const signal = AbortSignal.timeout(timeoutMs)
    let res: Response
    try {
      res = await doFetch(url, {
        redirect: 'manual',
        headers: { accept: 'application/did+ld+json,application/json' },
        signal,
      })
    } catch (err) {
      throw new IdentityError('resolver-unavailable', did, `fetch ${url.origin} failed: ${describe(err)}`, {
        cause: err,
      })
    }
    const { status } = res
    let text: string
    try {
      text = await readLimited(res, limit)
    } catch (err) {
      if (err instanceof TooBig) {
        throw new IdentityError('bad-did-document', did, `${url.pathname} larger than ${limit} bytes`, { status })
      }
      throw new IdentityError('resolver-unavailable', did, `reading ${url.origin} failed: ${describe(err)}`, {
        status,
        cause: err,
      })
    }
    if (status >= 500 || status === 429 || status === 408) {
      throw new IdentityError('resolver-unavailable', did, `${url.origin} answered ${status}`, { status })
    }
    if (method === 'plc' && (status === 410 || (status === 404 && /not available|tombstone/i.test(text)))) {
      throw new IdentityError('did-tombstoned', did, `PLC directory answered ${status}`, { status })
    }
    if (status >= 300 && status < 400) {
      throw new IdentityError('did-not-found', did, `${url.origin} redirected (${status}); not followed`, { status })
    }
    if (status !== 200) {
      throw new IdentityError('did-not-found', did, `${url.origin} answered ${status}`, { status })
    }
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new IdentityError('bad-did-document', did, 'document is not JSON', { status, cause: err })
    }
  }

  const fetchIdentity = async (did: string): Promise<ResolvedIdentity> => {
    counters.fetches++
    let doc: unknown
    if (did.startsWith('did:plc:')) {
      if (!DID_PLC_RE.test(did)) throw new IdentityError('did-not-found', did, 'malformed did:plc')
      if (verifyPlcLog) return fetchVerifiedPlc(did)
      doc = await fetchDoc(did, new URL(encodeURIComponent(did), plcUrl), 'plc')
      return { ...parseDidDocument(did, doc), resolvedAt: now(), source: 'plc-directory' }
    } else if (did.startsWith('did:web:')) {
      doc = await fetchDoc(did, didWebUrl(did), 'web')
      return { ...parseDidDocument(did, doc), resolvedAt: now(), source: 'did-web' }
    } else if (/^did:[a-z]+:/.test(did)) {
      throw new IdentityError('unsupported-did-method', did, 'only did:plc and did:web are supported')
    } else {
      throw new IdentityError('did-not-found', did, 'not a DID')
    }
  }

  /** The DID's identity from its verified operation log, compared with the served document. */
  const fetchVerifiedPlc = async (did: string): Promise<ResolvedIdentity> => {
    const docUrl = new URL(encodeURIComponent(did), plcUrl)
    const logUrl = new URL(`${encodeURIComponent(did)}/log/audit`, plcUrl)
    for (let attempt = 1; ; attempt++) {
      const [logRes, docRes] = await Promise.allSettled([fetchDoc(did, logUrl, 'plc', maxLogBytes), fetchDoc(did, docUrl, 'plc')])
      for (const r of [logRes, docRes]) {
        if (r.status === 'rejected' && (!isIdentityError(r.reason) || r.reason.transient)) throw r.reason
      }
      if (logRes.status === 'rejected') throw logRes.reason
      let log: VerifiedPlcLog
      const t0 = performance.now()
      try {
        log = await verifyPlcAuditLog(did, logRes.value)
      } catch (err) {
        if (err instanceof PlcLogError) throw new IdentityError('plc-log-invalid', did, `operation log refused: ${err.message}`, { cause: err })
        throw err
      } finally {
        counters.logsVerified++
        counters.logVerifyMs += performance.now() - t0
      }
      if (log.tombstone) {
        throw new IdentityError('did-tombstoned', did, `tombstoned by PLC operation ${log.tombstone.cid} at ${log.tombstone.createdAt} (verified log)`)
      }
      if (!log.signingKey) {
        throw new IdentityError('no-signing-key', did, `the last valid PLC operation ${log.lastOp.cid} names no #atproto key`)
      }
      const doc = docRes.status === 'fulfilled' ? docRes.value : null
      const mismatch = compareWithLog(did, log, docRes)
      // an operation may have landed between the two requests: ask once more before calling it a lie
      if (mismatch && attempt < 2) continue
      return {
        did,
        signingKey: log.signingKey,
        ...(log.handle ? { handle: log.handle } : {}),
        ...(log.pds ? { pds: log.pds } : {}),
        doc,
        resolvedAt: now(),
        source: 'plc-log',
        log,
        ...(mismatch ? { mismatch } : {}),
      }
    }
  }

  const resolve = async (did: string, o: { force?: boolean } = {}): Promise<ResolvedIdentity> => {
    counters.calls++
    if (!o.force) {
      const hit = fresh(did)
      if (hit) {
        counters.cacheHits++
        cache.delete(did) // LRU: move to the back (expiry unchanged)
        cache.set(did, hit)
        return hit.value
      }
      // join an in-flight fetch of the same DID
      const pending = inflight.get(did)
      if (pending) {
        counters.joined++
        return pending.catch((err) => {
          countError(err)
          throw err
        })
      }
    }
    // A forced call never joins: an in-flight fetch may have started before the change that made the
    // caller force (a #identity event, a signature that failed with the cached key).
    const gen = ++generation
    const p = limited(() => fetchIdentity(did)).then(
      (value) => {
        remember(value, gen)
        return value
      },
      (err) => {
        // a definite answer ("gone", "no key") evicts the old entry; a transient failure keeps it
        if (isIdentityError(err) && !err.transient && (cache.get(did)?.gen ?? 0) < gen) cache.delete(did)
        throw err
      },
    )
    inflight.set(did, p)
    try {
      return await p
    } catch (err) {
      countError(err)
      throw err
    } finally {
      if (inflight.get(did) === p) inflight.delete(did)
    }
  }

  const countError = (err: unknown) => {
    if (isIdentityError(err)) errors[err.code] = (errors[err.code] ?? 0) + 1
  }

  return {
    resolve,
    peek: (did) => fresh(did)?.value,
    prime(value) {
      if (fresh(value.did) || inflight.has(value.did) || max === 0) return false
      // generation 0: older than any fetch, so a fetch that finishes later always wins
      remember(value, 0)
      counters.primed++
      return true
    },
    async verifyHandle(did, handle) {
      const h = normalizeHandle(handle)
      if (!h) return false
      try {
        const got = await lookupHandle(h)
        return typeof got === 'string' && got.trim() === did
      } catch {
        return false
      }
    },
    async resolveHandle(handle) {
      const h = normalizeHandle(handle)
      if (!h) return undefined
      try {
        return (await lookupHandle(h))?.trim() || undefined
      } catch {
        return undefined
      }
    },
    invalidate: (did) => {
      cache.delete(did)
    },
    clear: () => cache.clear(),
    stats: () => ({ ...counters, errors: { ...errors }, size: cache.size }),
  }
}

/** How the served document (or the failure to get one) disagrees with the verified log, if it does. */
function compareWithLog(did: string, log: VerifiedPlcLog, doc: PromiseSettledResult<unknown>): DocMismatch | undefined {
  if (doc.status === 'rejected') {
    const why = (doc.reason as Error).message
    return { served: {}, fields: ['document'], message: `the PLC directory serves no usable document (${why}) while the verified log is live at ${log.lastOp.cid}` }
  }
  let served: ReturnType<typeof parseDidDocument>
  try {
    served = parseDidDocument(did, doc.value)
  } catch (err) {
    return { served: {}, fields: ['document'], message: `the PLC directory's document is unusable (${(err as Error).message}); the verified log is live at ${log.lastOp.cid}` }
  }
  const fields: DocMismatch['fields'] = []
  if (served.signingKey !== log.signingKey) fields.push('signingKey')
  if ((served.handle ?? null) !== (log.handle ?? null)) fields.push('handle')
  if ((served.pds ?? null) !== (log.pds ?? null)) fields.push('pds')
  if (!fields.length) return undefined
  const says = (f: string, a: unknown, b: unknown) => `${f}: document ${String(a ?? '(none)')}, log ${String(b ?? '(none)')}`
  const parts = fields.map((f) =>
    f === 'signingKey' ? says('key', served.signingKey, log.signingKey) : f === 'handle' ? says('handle', served.handle, log.handle) : says('pds', served.pds, log.pds),
  )
  return {
    served: { signingKey: served.signingKey, ...(served.handle ? { handle: served.handle } : {}), ...(served.pds ? { pds: served.pds } : {}) },
    fields,
    message: `the PLC directory's document disagrees with the DID's verified operation log (last op ${log.lastOp.cid}): ${parts.join('; ')}`,
  }
}

/**
 * Extracts the atproto facts from a DID document (no network). Throws IdentityError
 * `bad-did-document` / `no-signing-key`.
 */
export function parseDidDocument(did: string, doc: unknown): Omit<ResolvedIdentity, 'resolvedAt' | 'source'> {
  const parsed = didDocument.safeParse(doc)
  if (!parsed.success) {
    throw new IdentityError('bad-did-document', did, `not a DID document: ${parsed.error.issues[0]?.message ?? ''}`)
  }
  const d = parsed.data
  if (d.id !== did) throw new IdentityError('bad-did-document', did, `document is for ${d.id}`)
  let signingKey: string | undefined
  try {
    signingKey = signingDidKey(d)
  } catch (err) {
    throw new IdentityError('bad-did-document', did, `unreadable #atproto key: ${describe(err)}`, { cause: err })
  }
  if (!signingKey) throw new IdentityError('no-signing-key', did, 'no usable #atproto verification method')
  try {
    assertUsableDidKey(signingKey) // a key type we can verify with (K-256 / P-256), and a point on its curve
  } catch (err) {
    throw new IdentityError('no-signing-key', did, `unsupported #atproto key: ${describe(err)}`, { cause: err })
  }
  const handle = getHandle(d)?.toLowerCase()
  const pds = getPdsEndpoint(d)
  return {
    did,
    signingKey,
    ...(handle ? { handle } : {}),
    ...(pds ? { pds } : {}),
    doc,
  }
}

/**
 * The `#atproto` verification method as a did:key, for the three method types atproto documents
 * carry (tests hold it to `@atproto/identity`'s `getKey`). Undefined for another type.
 */
export function signingDidKey(doc: DidDocument): string | undefined {
  const method = getSigningKey(doc)
  if (!method) return undefined
  switch (method.type) {
    case 'Multikey': {
      const { jwtAlg, keyBytes } = parseMultikey(method.publicKeyMultibase)
      return formatDidKey(jwtAlg, keyBytes)
    }
    case 'EcdsaSecp256k1VerificationKey2019':
      return formatDidKey(SECP256K1_JWT_ALG, multibaseToBytes(method.publicKeyMultibase))
    case 'EcdsaSecp256r1VerificationKey2019':
      return formatDidKey(P256_JWT_ALG, multibaseToBytes(method.publicKeyMultibase))
    default:
      return undefined
  }
}

/** `https://<host>/.well-known/did.json` for a did:web (http for localhost). */
export function didWebUrl(did: string): URL {
  if (!DID_WEB_RE.test(did)) {
    // extra ':' segments are did:web paths, which atproto does not use
    const code = did.slice('did:web:'.length).includes(':') ? 'unsupported-did-method' : 'did-not-found'
    throw new IdentityError(code, did, 'malformed or path-based did:web')
  }
  let host: string
  try {
    host = decodeURIComponent(did.slice('did:web:'.length))
  } catch {
    throw new IdentityError('did-not-found', did, 'malformed did:web')
  }
  let url: URL
  try {
    url = new URL(`https://${host}/.well-known/did.json`)
  } catch {
    throw new IdentityError('did-not-found', did, 'did:web host is not a valid hostname')
  }
  if (url.host !== host.toLowerCase() || url.pathname !== '/.well-known/did.json') {
    throw new IdentityError('did-not-found', did, 'did:web host is not a valid hostname')
  }
  if (LOCAL_HOSTS.has(url.hostname)) {
    url.protocol = 'http:'
  } else if (url.port) {
    throw new IdentityError('unsupported-did-method', did, 'did:web with a port is only allowed for localhost')
  }
  return url
}

/**
 * Handle → DID through a PDS's `com.atproto.identity.resolveHandle` (for `.test` handles on a dev
 * PDS, which neither DNS nor HTTPS can resolve). Undefined when the PDS does not know the handle.
 */
export function pdsHandleResolver(
  pdsUrl: string,
  opts: { fetch?: typeof fetch; timeoutMs?: number } = {},
): HandleLookup {
  const doFetch = opts.fetch ?? globalThis.fetch
  const timeoutMs = opts.timeoutMs ?? 5_000
  return async (handle) => {
    const url = new URL('/xrpc/com.atproto.identity.resolveHandle', pdsUrl)
    url.searchParams.set('handle', handle)
    const res = await doFetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) {
      await res.body?.cancel()
      return undefined
    }
    const body = (await res.json()) as { did?: unknown }
    return typeof body.did === 'string' && body.did.startsWith('did:') ? body.did : undefined
  }
}

/**
 * The network handle lookup: DNS TXT `_atproto.<handle>` (`did=…`), then
 * `https://<handle>/.well-known/atproto-did` — via @atproto/identity's HandleResolver, whose default
 * fetch refuses http:, private addresses and custom ports.
 */
export function defaultHandleResolver(opts: { timeoutMs?: number; backupNameservers?: string[] } = {}): HandleLookup {
  let resolver: Promise<{ resolve(handle: string): Promise<string | undefined> }> | undefined
  return async (handle) => {
    resolver ??= import('@atproto/identity').then(
      ({ HandleResolver }) =>
        new HandleResolver({
          timeout: opts.timeoutMs ?? 3_000,
          ...(opts.backupNameservers ? { backupNameservers: opts.backupNameservers } : {}),
        }),
    )
    return (await resolver).resolve(handle)
  }
}

const normalizeHandle = (handle: string): string | undefined => {
  const h = handle.trim().toLowerCase()
  return h.length <= 253 && HANDLE_RE.test(h) ? h : undefined
}

class TooBig extends Error {}

const readLimited = async (res: Response, limit: number): Promise<string> => {
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel()
    throw new TooBig()
  }
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > limit) {
      await reader.cancel()
      throw new TooBig()
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const describe = (err: unknown): string => {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause
    const code = cause && typeof cause === 'object' && 'code' in cause ? ` (${String(cause.code)})` : ''
    return `${err.name}: ${err.message}${code}`
  }
  return String(err)
}
