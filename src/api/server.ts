/**
 * The read API over the mirror database (node:http): XRPC reads that atproto clients already speak
 * (`com.atproto.repo.getRecord`, `com.atproto.repo.listRecords`, `com.atproto.sync.getRecord`), a
 * deck with its cards and their verification status, `/health` and `/metrics`.
 *
 * It reads the store only, through its own (read-only) connection, so it runs inside `sync`
 * (`sync --serve`) or as a second process on the same database file (`serve`). What needs more than
 * the store (metrics of a running mirror, the deck view that re-proves records) is handed in.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { listCursors } from '../store/cursor.ts'
import type { Db } from '../store/db.ts'
import { buildRecordProofCar, ProofUnavailableError } from '../store/proofs.ts'
import { findRecord, findRepo, recordPage } from '../store/read-api.ts'
import { AtUriError, parseRecordUri } from '../verify/at-uri.ts'
import { availableRepo, invalidRequest, Params, XrpcError } from './xrpc.ts'

export const DECK_COLLECTION = 'org.stormlightlabs.malfestio.deck'

/** What a running mirror adds to /health (connection state, a fatal error). */
export interface LiveHealth {
  ok: boolean
  [fact: string]: unknown
}

export interface ApiOptions {
  /** a connection of its own (read-only is enough) */
  db: Db
  /** Prometheus exposition: the live registry in `sync --serve`, the database's counters in `serve` */
  metrics?: () => Promise<{ contentType: string; body: string }>
  /** facts of the running mirror; absent in a separate `serve` process */
  health?: () => LiveHealth
  /** /health answers 503 once the cursor's event is older than this (seconds) */
  maxLagSeconds?: number
  /** the deck with its cards resolved and re-proven (verification lives outside the API) */
  deckView?: (db: Db, deckUri: string) => Promise<unknown>
}

type Handler = (q: URLSearchParams, res: ServerResponse) => Promise<void> | void

const json = (res: ServerResponse, status: number, body: unknown | string): void => {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Checks repo / collection / rkey syntax as the lexicon formats require (at-identifier, nsid, record-key). */
function checkRecordParams(repo: string, collection: string, rkey: string): void {
  try {
    parseRecordUri(`at://${repo}/${collection}/${rkey}`)
  } catch (err) {
    if (err instanceof AtUriError) throw invalidRequest(err.message.replace(/^at:\/\/\S+: /, ''))
    throw err
  }
}

export function createApiServer(opts: ApiOptions): Server {
  const { db } = opts

  const getRecord: Handler = (q, res) => {
    const p = new Params(q)
    const repo = p.required('repo')
    const collection = p.required('collection')
    const rkey = p.required('rkey')
    const cid = p.optional('cid')
    checkRecordParams(repo, collection, rkey)
    const r = availableRepo(findRepo(db, repo), repo)
    const rec = findRecord(db, r.did, collection, rkey)
    if (!rec || (cid !== undefined && rec.cid !== cid)) {
      throw invalidRequest(`Could not locate record: at://${r.did}/${collection}/${rkey}`, 'RecordNotFound')
    }
    json(res, 200, `{"uri":${JSON.stringify(rec.uri)},"cid":${JSON.stringify(rec.cid)},"value":${rec.valueJson}}`)
  }

  const listRecords: Handler = (q, res) => {
    const p = new Params(q)
    const repo = p.required('repo')
    const collection = p.required('collection')
    const limit = p.integer('limit', 1, 100, 50)
    const cursor = p.optional('cursor')
    const reverse = p.boolean('reverse', false)
    checkRecordParams(repo, collection, 'self')
    const r = availableRepo(findRepo(db, repo), repo)
    const rows = recordPage(db, { did: r.did, collection, limit, cursor, reverse })
    const records = rows.map((x) => `{"uri":${JSON.stringify(x.uri)},"cid":${JSON.stringify(x.cid)},"value":${x.valueJson}}`).join(',')
    // as a PDS does: the cursor is the last record's key whenever the page is not empty
    const last = rows.at(-1)
    json(res, 200, `{"records":[${records}]${last ? `,"cursor":${JSON.stringify(last.rkey)}` : ''}}`)
  }

  const syncGetRecord: Handler = async (q, res) => {
    const p = new Params(q)
    const did = p.required('did')
    const collection = p.required('collection')
    const rkey = p.required('rkey')
    if (!did.startsWith('did:')) throw invalidRequest('did must be a valid did')
    checkRecordParams(did, collection, rkey)
    availableRepo(findRepo(db, did), did)
    const uri = `at://${did}/${collection}/${rkey}`
    let car: Uint8Array
    try {
      // at the repo head: the record with its MST path, or the proof that the key is absent (as a PDS answers)
      car = (await buildRecordProofCar(db, uri)).car
    } catch (err) {
      if (!(err instanceof ProofUnavailableError)) throw err
      if (err.code === 'not-found' || err.code === 'purged') throw invalidRequest(`Could not find repo: ${did}`, 'RepoNotFound')
      // the mirror keeps MST nodes on the paths it mirrors: another collection's key may not be provable here
      if (!findRecord(db, did, collection, rkey)) throw invalidRequest(`Could not locate record: ${uri} (the mirror holds no proof for it)`, 'RecordNotFound')
      throw new XrpcError(500, 'ProofUnavailable', err.message)
    }
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car', 'content-length': car.byteLength })
    res.end(car)
  }

  const deck = async (repo: string, rkey: string, res: ServerResponse): Promise<void> => {
    checkRecordParams(repo, DECK_COLLECTION, rkey)
    const r = availableRepo(findRepo(db, repo), repo)
    const uri = `at://${r.did}/${DECK_COLLECTION}/${rkey}`
    if (!findRecord(db, r.did, DECK_COLLECTION, rkey)) throw invalidRequest(`Could not locate record: ${uri}`, 'RecordNotFound')
    if (!opts.deckView) throw new XrpcError(501, 'MethodNotImplemented', 'this server has no deck view')
    json(res, 200, await opts.deckView(db, uri))
  }

  const getDeck: Handler = (q, res) => {
    const uri = new Params(q).required('uri')
    let parsed
    try {
      parsed = parseRecordUri(uri)
    } catch (err) {
      if (err instanceof AtUriError) throw invalidRequest(err.message)
      throw err
    }
    if (parsed.collection !== DECK_COLLECTION) throw invalidRequest(`${uri} is not a ${DECK_COLLECTION} record`)
    return deck(parsed.authority, parsed.rkey, res)
  }

  const health: Handler = (_q, res) => {
    const cursors = listCursors(db)
    // the upstream most recently written to is the one being followed
    const c = cursors.reduce<(typeof cursors)[number] | undefined>((a, b) => (!a || b.updatedAt > a.updatedAt ? b : a), undefined)
    const eventMs = c?.eventTime ? Date.parse(c.eventTime) : NaN
    const lagSeconds = Number.isFinite(eventMs) ? Math.max(0, (Date.now() - eventMs) / 1000) : null
    const desynchronized = db.prepare(`SELECT COUNT(*) FROM repos WHERE state <> 'synchronized'`).pluck().get() as number
    const live = opts.health?.()
    let ok = live?.ok ?? true
    const lagging = opts.maxLagSeconds !== undefined && (lagSeconds === null || lagSeconds > opts.maxLagSeconds)
    if (lagging) ok = false
    json(res, ok ? 200 : 503, {
      ...live,
      ok,
      source: live ? 'live' : 'database',
      service: c?.service ?? null,
      cursor: c?.seq ?? null,
      eventTime: c?.eventTime ?? null,
      lagSeconds: lagSeconds === null ? null : Math.round(lagSeconds * 10) / 10,
      cursorUpdatedAt: c?.updatedAt ?? null,
      reposNotSynchronized: desynchronized,
      ...(lagging ? { reason: `lag ${lagSeconds === null ? 'unknown' : `${Math.round(lagSeconds)} s`} exceeds ${opts.maxLagSeconds} s` } : {}),
    })
  }

  const metrics: Handler = async (_q, res) => {
    if (!opts.metrics) throw new XrpcError(404, 'NotFound', 'no metrics on this server')
    const m = await opts.metrics()
    res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.body) })
    res.end(m.body)
  }

  const xrpc: Record<string, Handler> = {
    'com.atproto.repo.getRecord': getRecord,
    'com.atproto.repo.listRecords': listRecords,
    'com.atproto.sync.getRecord': syncGetRecord,
    'org.stormlightlabs.malfestio.mirror.getDeck': getDeck,
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mirror')
    const path = url.pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new XrpcError(405, 'InvalidRequest', `Incorrect HTTP method (${req.method}): this server answers GET`)
    }
    if (path.startsWith('/xrpc/')) {
      const handler = xrpc[path.slice('/xrpc/'.length)]
      if (!handler) throw new XrpcError(501, 'MethodNotImplemented', 'Method Not Implemented')
      return handler(url.searchParams, res)
    }
    if (path === '/health') return health(url.searchParams, res)
    if (path === '/metrics') return metrics(url.searchParams, res)
    const m = /^\/decks\/([^/]+)\/([^/]+)\/?$/.exec(path)
    if (m) return deck(pathPart(m[1]!), pathPart(m[2]!), res)
    throw new XrpcError(404, 'NotFound', `Not Found: ${path}`)
  }

  return createServer((req, res) => {
    // public, read-only data: any web app may read it
    res.setHeader('access-control-allow-origin', '*')
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy(err as Error)
        return
      }
      if (err instanceof XrpcError) return json(res, err.status, { error: err.error, message: err.message })
      const e = err as Error & { code?: string }
      // a writer holding the database past busy_timeout: the client may retry
      if (e.code === 'SQLITE_BUSY') return json(res, 503, { error: 'Unavailable', message: 'the database is busy, retry' })
      json(res, 500, { error: 'InternalServerError', message: e.message })
    })
  })
}

/** A percent-decoded path segment; a malformed escape is the client's error, not ours. */
function pathPart(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new XrpcError(400, 'InvalidRequest', `malformed path segment: ${segment}`)
  }
}

export interface RunningApi {
  /** http://host:port */
  url: string
  port: number
  close(): Promise<void>
}

/** Starts the API on `host:port` (port 0: any free port). */
export async function startApiServer(opts: ApiOptions & { port: number; host?: string }): Promise<RunningApi> {
  const server = createApiServer(opts)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port, address } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
