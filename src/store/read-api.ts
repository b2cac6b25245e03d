/**
 * The reads behind the HTTP API (`src/api/`): a repo by DID or verified handle, one record, and
 * pages of a collection ordered by record key the way a PDS pages `com.atproto.repo.listRecords`.
 * Plain rows out; record values stay as the stored JSON text, spliced into responses unparsed.
 */
import type { Db } from './db.ts'

export interface RepoAvailability {
  did: string
  /** false: the account is not active (takendown, suspended, deactivated, deleted, …): its records are hidden */
  active: boolean
  status: string | null
  state: string
  rev: string | null
  headCid: string | null
}

/**
 * The repo named by a DID, or by a handle whose resolution back to the DID the mirror verified.
 * Undefined when the mirror holds no such repo.
 */
export function findRepo(db: Db, identifier: string): RepoAvailability | undefined {
  let did = identifier
  if (!identifier.startsWith('did:')) {
    did = db.prepare('SELECT did FROM identities WHERE handle = ? AND handle_verified = 1 ORDER BY resolved_at DESC LIMIT 1')
      .pluck()
      .get(identifier.toLowerCase()) as string
    if (!did) return undefined
  }
  const r = db.prepare('SELECT did, active, status, state, rev, head_cid AS headCid FROM repos WHERE did = ?').get(did) as
    | (Omit<RepoAvailability, 'active'> & { active: number })
    | undefined
  return r && { ...r, active: r.active === 1 }
}

/** A current record as the API serves it: the value is the stored JSON text. */
export interface ApiRecordRow {
  uri: string
  rkey: string
  cid: string
  rev: string
  valueJson: string
  valid: boolean
  invalidReason: string | null
}

const COLUMNS = 'uri, rkey, cid, rev, value_json AS valueJson, valid, invalid_reason AS invalidReason'
type Raw = Omit<ApiRecordRow, 'valid'> & { valid: number }
const toRow = (r: Raw): ApiRecordRow => ({ ...r, valid: r.valid === 1 })

/** The current record at did/collection/rkey (whatever the repo's account status), or undefined. */
export function findRecord(db: Db, did: string, collection: string, rkey: string): ApiRecordRow | undefined {
  const r = db.prepare(`SELECT ${COLUMNS} FROM records WHERE uri = ?`).get(`at://${did}/${collection}/${rkey}`) as Raw | undefined
  return r && toRow(r)
}

export interface RecordPageQuery {
  did: string
  collection: string
  limit: number
  /** the rkey the previous page ended at */
  cursor?: string
  /** ascending rkey order (oldest TID first); default descending, as a PDS pages */
  reverse?: boolean
}

/**
 * One page of a collection: descending record keys by default (`reverse` ascending), starting after
 * `cursor` in that order. Keys compare as bytes, as a PDS orders its URIs.
 */
export function recordPage(db: Db, q: RecordPageQuery): ApiRecordRow[] {
  const sql = q.reverse
    ? `SELECT ${COLUMNS} FROM records WHERE did = @did AND collection = @collection AND (@cursor IS NULL OR rkey > @cursor) ORDER BY rkey ASC LIMIT @limit`
    : `SELECT ${COLUMNS} FROM records WHERE did = @did AND collection = @collection AND (@cursor IS NULL OR rkey < @cursor) ORDER BY rkey DESC LIMIT @limit`
  const rows = db.prepare(sql).all({ did: q.did, collection: q.collection, cursor: q.cursor ?? null, limit: q.limit }) as Raw[]
  return rows.map(toRow)
}
