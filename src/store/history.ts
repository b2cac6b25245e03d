/**
 * Reads of the provenance the mirror keeps: every version of a record, its commits, the blocks that
 * prove them, the author's identity over time and account purges. Plain rows out; the proving is
 * `verify/proof.ts`'s job.
 */
import { countBlocks } from './blocks.ts'
import type { Db } from './db.ts'
import { REPO_OF_DID } from './repo-ids.ts'

export type VersionAction = 'create' | 'update' | 'delete' | 'resync' | 'purge'

export interface VersionRow {
  id: number
  uri: string
  did: string
  collection: string
  rkey: string
  action: VersionAction
  /** the record's CID in this version; null for delete / purge */
  cid: string | null
  prevCid: string | null
  /** null only for purge tombstones */
  rev: string | null
  commitCid: string | null
  seq: number | null
  time: string | null
  signingKey: string | null
  /** commit, MST nodes, record */
  proofCids: string[]
  /** the author's handle when the version was accepted (null when not known) */
  handle: string | null
  handleVerified: boolean | null
}

const VERSION_COLUMNS = `id, uri, did, collection, rkey, action, cid, prev_cid AS prevCid, rev, commit_cid AS commitCid, seq, time,
  signing_key AS signingKey, proof_cids AS proofCids, handle, handle_verified AS handleVerified`

type RawVersion = Omit<VersionRow, 'proofCids' | 'handleVerified'> & { proofCids: string; handleVerified: number | null }

const toVersion = (r: RawVersion): VersionRow => ({
  ...r,
  proofCids: JSON.parse(r.proofCids) as string[],
  handleVerified: r.handleVerified === null ? null : r.handleVerified === 1,
})

/** Every stored version of a record, oldest first (by rev; purge tombstones last). */
export function listVersions(db: Db, uri: string): VersionRow[] {
  const rows = db.prepare(`SELECT ${VERSION_COLUMNS} FROM record_versions WHERE uri = ? ORDER BY rev IS NULL, rev, id`).all(uri) as RawVersion[]
  return rows.map(toVersion)
}

/** A page of versions in id order (offline re-verification walks the whole table this way). */
export function versionsPage(db: Db, afterId: number, limit: number): VersionRow[] {
  const rows = db.prepare(`SELECT ${VERSION_COLUMNS} FROM record_versions WHERE id > ? ORDER BY id LIMIT ?`).all(afterId, limit) as RawVersion[]
  return rows.map(toVersion)
}

export interface CurrentRecordRow {
  uri: string
  did: string
  collection: string
  rkey: string
  cid: string
  rev: string
  seq: number | null
  valueJson: string
  valid: boolean
  invalidReason: string | null
  indexedAt: string
}

const RECORD_COLUMNS = `uri, did, collection, rkey, cid, rev, seq, value_json AS valueJson, valid,
  invalid_reason AS invalidReason, indexed_at AS indexedAt`

type RawRecord = Omit<CurrentRecordRow, 'valid'> & { valid: number }
const toRecord = (r: RawRecord): CurrentRecordRow => ({ ...r, valid: r.valid === 1 })

/** The current record at `uri` (whatever the repo's account status), or undefined. */
export function getCurrentRecord(db: Db, uri: string): CurrentRecordRow | undefined {
  const r = db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE uri = ?`).get(uri) as RawRecord | undefined
  return r && toRecord(r)
}

/** A page of current records in URI order. */
export function recordsPage(db: Db, afterUri: string, limit: number): CurrentRecordRow[] {
  return (db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE uri > ? ORDER BY uri LIMIT ?`).all(afterUri, limit) as RawRecord[]).map(toRecord)
}

export const CARD_COLLECTION = 'org.stormlightlabs.malfestio.card'

/** Current cards, of any author, whose `deckRef` names `deckUri`. */
export function cardsClaimingDeck(db: Db, deckUri: string): CurrentRecordRow[] {
  // same expression and collection as the partial index records_by_deck_ref
  const rows = db
    .prepare(
      `SELECT ${RECORD_COLUMNS} FROM records
       WHERE collection = 'org.stormlightlabs.malfestio.card' AND json_extract(value_json, '$.deckRef') = ? ORDER BY uri`,
    )
    .all(deckUri) as RawRecord[]
  return rows.map(toRecord)
}

/** Cards (by URI) with a stored version whose `deckRef` named `deckUri` — current, deleted or not applied. */
export function cardUrisWithDeckRef(db: Db, deckUri: string): string[] {
  return db.prepare('SELECT DISTINCT uri FROM record_versions WHERE deck_ref = ? ORDER BY uri').pluck().all(deckUri) as string[]
}

export interface CommitRow {
  did: string
  rev: string
  cid: string
  dataCid: string
  since: string | null
  seq: number | null
  time: string | null
  signingKey: string
  sig: Uint8Array
  source: 'firehose' | 'resync'
}

const commitColumns = (t = ''): string =>
  `${t}did, ${t}rev, ${t}cid, ${t}data_cid AS dataCid, ${t}since, ${t}seq, ${t}time, ${t}signing_key AS signingKey, ${t}sig, ${t}source`

export function getCommitByCid(db: Db, did: string, cid: string): CommitRow | undefined {
  return db.prepare(`SELECT ${commitColumns()} FROM commits WHERE repo = ${REPO_OF_DID} AND cid = ?`).get(did, cid) as CommitRow | undefined
}

/** A page of commits in (did, rev) order: the DIDs walked in order through `dids`, each one's commits through its key. */
export function commitsPage(db: Db, after: { did: string; rev: string }, limit: number): CommitRow[] {
  return db
    .prepare(
      `SELECT ${commitColumns('c.')} FROM dids d CROSS JOIN commits c ON c.repo = d.id
       WHERE d.did >= ? AND (d.did > ? OR c.rev > ?) ORDER BY d.did, c.rev LIMIT ?`,
    )
    .all(after.did, after.did, after.rev, limit) as CommitRow[]
}

export interface IdentityHistoryRow {
  id: number
  did: string
  handle: string | null
  handleVerified: boolean
  signingKey: string | null
  pds: string | null
  fromSeq: number | null
  at: string
}

/** What the DID resolved to over time, oldest first. */
export function listIdentityHistory(db: Db, did: string): IdentityHistoryRow[] {
  const rows = db
    .prepare(
      `SELECT id, did, handle, handle_verified AS handleVerified, signing_key AS signingKey, pds, from_seq AS fromSeq, at
       FROM identity_history WHERE did = ? ORDER BY id`,
    )
    .all(did) as (Omit<IdentityHistoryRow, 'handleVerified'> & { handleVerified: number })[]
  return rows.map((r) => ({ ...r, handleVerified: r.handleVerified === 1 }))
}

/** The DID a handle resolved to (as last seen by the mirror), for URIs written with a handle. */
export function didForHandle(db: Db, handle: string): string | undefined {
  return db.prepare('SELECT did FROM identities WHERE handle = ? ORDER BY handle_verified DESC LIMIT 1').pluck().get(handle.toLowerCase()) as
    | string
    | undefined
}

export interface PurgeRow {
  did: string
  seq: number | null
  time: string | null
  headRev: string | null
  headCid: string | null
  records: number
  lastVersionId: number
  at: string
}

/** Account-deletion purges of a DID (or of every DID), oldest first. */
export function listPurges(db: Db, did?: string): PurgeRow[] {
  return db
    .prepare(
      `SELECT did, seq, time, head_rev AS headRev, head_cid AS headCid, records, last_version_id AS lastVersionId, at
       FROM repo_purges WHERE (@did IS NULL OR did = @did) ORDER BY id`,
    )
    .all({ did: did ?? null }) as PurgeRow[]
}

/** How many rows the offline re-verification will walk (for progress). */
export function countProvenance(db: Db): { records: number; versions: number; commits: number; blocks: number; repos: number } {
  const n = (sql: string) => db.prepare(sql).pluck().get() as number
  return {
    records: n('SELECT COUNT(*) FROM records'),
    versions: n('SELECT COUNT(*) FROM record_versions'),
    commits: n('SELECT COUNT(*) FROM commits'),
    blocks: countBlocks(db),
    repos: n('SELECT COUNT(*) FROM repos'),
  }
}
