/**
 * Record writes and reads. Writes take only proven inputs: an `AcceptedCommit` wraps a
 * `VerifiedCommit` from verify/commit.ts, a `VerifiedSnapshot` a whole repo proven by resync.
 */
import type { VerifiedCommit } from '../verify/commit.ts'
import type { VerifiedSync } from '../verify/sync.ts'
import { deleteBlocks, putBlocks } from './blocks.ts'
import { nowIso, type Db } from './db.ts'
import { CARD_COLLECTION, type CommitRow } from './history.ts'
import { repoId } from './repo-ids.ts'
import { setRepoHead } from './repos.ts'

/**
 * A record body decoded and checked against its lexicon (invalid ones are kept, flagged). Its bytes
 * are not copied here: they are the record's block, kept in `blocks` with the commit's proof.
 */
export interface RecordValue {
  json: string
  valid: boolean
  invalidReason: string | null
}

export interface AcceptedOp {
  action: 'create' | 'update' | 'delete'
  collection: string
  rkey: string
  cid: string | null
  prev: string | null
  proofPath: string[]
  value?: RecordValue
}

/** The PLC operation that made a commit's signing key valid (verified PLC log), for the audit. */
export interface KeyOriginRef {
  cid: string
  createdAt: string
}

/** A verified commit and the in-scope record changes it proves. */
export interface AcceptedCommit {
  commit: VerifiedCommit
  ops: AcceptedOp[]
  /** set when the key came from the DID's verified PLC log */
  keyOrigin?: KeyOriginRef | null
}

export const recordUri = (did: string, collection: string, rkey: string): string => `at://${did}/${collection}/${rkey}`

/** The bounds of one DID's record URIs, [`at://DID/`, `at://DID0`): the primary key finds a repo's records. */
export const didUriRange = (did: string): [string, string] => [`at://${did}/`, `at://${did}0`]

function putRecord(db: Db, did: string, op: AcceptedOp, rev: string, seq: number | null): void {
  const v = op.value!
  db.prepare(
    `INSERT INTO records (uri, did, collection, rkey, cid, rev, seq, value_json, valid, invalid_reason, indexed_at)
     VALUES (@uri, @did, @collection, @rkey, @cid, @rev, @seq, @json, @valid, @reason, @now)
     ON CONFLICT (uri) DO UPDATE SET cid = @cid, rev = @rev, seq = @seq, value_json = @json,
       valid = @valid, invalid_reason = @reason, indexed_at = @now`,
  ).run({
    uri: recordUri(did, op.collection, op.rkey),
    did,
    collection: op.collection,
    rkey: op.rkey,
    cid: op.cid,
    rev,
    seq,
    json: v.json,
    valid: v.valid ? 1 : 0,
    reason: v.invalidReason,
    now: nowIso(),
  })
}

/** The deck a card version claims (kept with the version: decks find cards known only from history). */
function deckRefOf(value: RecordValue | undefined): string | null {
  if (!value) return null
  try {
    const ref = (JSON.parse(value.json) as { deckRef?: unknown }).deckRef
    return typeof ref === 'string' ? ref : null
  } catch {
    return null
  }
}

function putVersion(
  db: Db,
  did: string,
  op: AcceptedOp,
  action: 'create' | 'update' | 'delete' | 'resync',
  c: { rev: string; cid: string; seq: number | null; time: string | null; signingKey: string },
  source: 'firehose' | 'resync',
): void {
  const uri = recordUri(did, op.collection, op.rkey)
  const proof = [c.cid, ...op.proofPath, ...(op.cid ? [op.cid] : [])]
  // the identity write of the same batch runs first, so this is the handle the author had when accepted
  const id = db.prepare('SELECT handle, handle_verified AS verified FROM identities WHERE did = ?').get(did) as
    | { handle: string | null; verified: number }
    | undefined
  const row = {
    uri,
    did,
    collection: op.collection,
    rkey: op.rkey,
    action,
    cid: op.cid,
    prev: op.prev,
    rev: c.rev,
    commit: c.cid,
    seq: c.seq,
    time: c.time,
    key: c.signingKey,
    proof: JSON.stringify(proof),
    handle: id?.handle ?? null,
    verified: id ? id.verified : null,
    deckRef: op.collection === CARD_COLLECTION ? deckRefOf(op.value) : null,
  }
  const insert = `INSERT INTO record_versions
       (uri, did, collection, rkey, action, cid, prev_cid, rev, commit_cid, seq, time, signing_key, proof_cids, handle, handle_verified, deck_ref)
     VALUES (@uri, @did, @collection, @rkey, @action, @cid, @prev, @rev, @commit, @seq, @time, @key, @proof, @handle, @verified, @deckRef)`
  if (source === 'resync') {
    db.prepare(`${insert} ON CONFLICT (uri, rev) DO NOTHING`).run(row)
    return
  }
  // A firehose op says more than a resync snapshot of the same commit (which op, seq, time): it
  // replaces a snapshot row at the same rev, and makes a snapshot row that only repeats it redundant
  // (same CID, the very next row of that record).
  db.prepare(
    `${insert} ON CONFLICT (uri, rev) DO UPDATE SET action = excluded.action, prev_cid = excluded.prev_cid, seq = excluded.seq,
       time = excluded.time, proof_cids = excluded.proof_cids
     WHERE record_versions.seq IS NULL`,
  ).run(row)
  db.prepare(
    `DELETE FROM record_versions AS r
     WHERE r.uri = @uri AND r.seq IS NULL AND r.action IN ('resync', 'delete') AND r.cid IS @cid AND r.rev > @rev
       AND NOT EXISTS (SELECT 1 FROM record_versions m WHERE m.uri = @uri AND m.rev > @rev AND m.rev < r.rev)`,
  ).run({ uri, cid: op.cid, rev: c.rev })
}

/**
 * The blocks of a commit worth keeping: the commit, the in-scope records, the MST nodes proving the
 * in-scope ops, and the MST nodes in-scope keys could sit under (`scopeNodes`), so the records stay
 * provable from each new head. A commit verified without `scopeNodes` keeps every MST node. The
 * other nodes prove only other collections: on the bench they were 31 % of the new blocks, and the
 * (did, cid) index they feed took half of every batch's page writes.
 */
function proofBlocks(accepted: AcceptedCommit): [string, Uint8Array][] {
  const c = accepted.commit
  const inScopeRecords = new Set(accepted.ops.map((o) => o.cid).filter((x): x is string => !!x))
  if (!c.scopeNodes) {
    const otherRecords = new Set(c.ops.map((o) => o.cid).filter((x): x is string => !!x && !inScopeRecords.has(x)))
    return [...c.blocks].filter(([cid]) => !otherRecords.has(cid))
  }
  const keep = new Set([c.cid, ...c.scopeNodes, ...inScopeRecords, ...accepted.ops.flatMap((o) => o.proofPath)])
  return [...c.blocks].filter(([cid]) => keep.has(cid))
}

/** A signed head, keyed by (repo id, rev); one already stored is left as it is. */
function putCommitRow(db: Db, row: CommitRow, keyOrigin: KeyOriginRef | null | undefined): void {
  db.prepare(
    `INSERT OR IGNORE INTO commits (repo, did, rev, cid, data_cid, since, seq, time, signing_key, sig, source, key_op_cid, key_op_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(repoId(db, row.did), row.did, row.rev, row.cid, row.dataCid, row.since, row.seq, row.time, row.signingKey, row.sig, row.source, keyOrigin?.cid ?? null, keyOrigin?.createdAt ?? null)
}

/**
 * Keeps the proof of a verified commit without changing current state: the commit row, its blocks
 * (commit, MST nodes, in-scope records) and a version row per in-scope op. Idempotent.
 */
export function writeHistory(db: Db, accepted: AcceptedCommit): void {
  const c = accepted.commit
  putCommitRow(db, { did: c.did, rev: c.rev, cid: c.cid, dataCid: c.commit.data, since: c.since, seq: c.seq, time: c.time, signingKey: c.signingKey, sig: c.commit.sig, source: 'firehose' }, accepted.keyOrigin)
  putBlocks(db, c.did, proofBlocks(accepted), c.cidBytes)
  const meta = { rev: c.rev, cid: c.cid, seq: c.seq, time: c.time, signingKey: c.signingKey }
  for (const op of accepted.ops) putVersion(db, c.did, op, op.action, meta, 'firehose')
}

/**
 * Applies a verified commit that follows the stored head: its history (above), the record changes,
 * and the new repo head. Call inside the batch transaction.
 */
export function writeCommit(db: Db, accepted: AcceptedCommit): void {
  const c = accepted.commit
  writeHistory(db, accepted)
  for (const op of accepted.ops) {
    if (op.action === 'delete') db.prepare('DELETE FROM records WHERE uri = ?').run(recordUri(c.did, op.collection, op.rkey))
    else putRecord(db, c.did, op, c.rev, c.seq)
  }
  setRepoHead(db, c.did, { rev: c.rev, dataCid: c.commit.data, headCid: c.cid, seq: c.seq })
}

/**
 * A #sync that re-signs the data the mirror already holds (key rotation, reactivation): the new signed
 * head is kept (commit row + block) so current records stay provable from the current head.
 */
export function writeSyncHead(db: Db, s: VerifiedSync, since: string | null, keyOrigin: KeyOriginRef | null = null): void {
  putCommitRow(db, { did: s.did, rev: s.rev, cid: s.cid, dataCid: s.commit.data, since, seq: s.seq, time: s.time, signingKey: s.signingKey, sig: s.commit.sig, source: 'firehose' }, keyOrigin)
  putBlocks(db, s.did, [[s.cid, s.commitBytes]])
  setRepoHead(db, s.did, { rev: s.rev, dataCid: s.commit.data, headCid: s.cid, seq: s.seq })
}

/** A whole repo proven by resync: its signed head and every in-scope record with its proof path. */
export interface VerifiedSnapshot {
  did: string
  rev: string
  commitCid: string
  dataCid: string
  sig: Uint8Array
  signingKey: string
  /** blocks to keep: commit, MST nodes on in-scope paths, in-scope records */
  blocks: Map<string, Uint8Array>
  /** the binary CID of each of `blocks` (absent: parsed from the strings) */
  cidBytes?: ReadonlyMap<string, Uint8Array>
  records: (AcceptedOp & { action: 'create' })[]
  /** stored records the snapshot proves absent, with the MST nodes proving it (in `blocks`) */
  absent?: { collection: string; rkey: string; proofPath: string[] }[]
  /** set when the key came from the DID's verified PLC log */
  keyOrigin?: KeyOriginRef | null
}

export interface SnapshotDiff {
  created: number
  updated: number
  deleted: number
  unchanged: number
}

/** Replaces the mirror's view of one repo with a verified snapshot (create / update / delete). */
export function writeSnapshot(db: Db, snap: VerifiedSnapshot, inScope: (collection: string) => boolean): SnapshotDiff {
  const diff: SnapshotDiff = { created: 0, updated: 0, deleted: 0, unchanged: 0 }
  const existing = new Map(
    (db.prepare('SELECT uri, cid, collection, rkey FROM records WHERE uri >= ? AND uri < ?').all(...didUriRange(snap.did)) as {
      uri: string
      cid: string
      collection: string
      rkey: string
    }[]).map((r) => [r.uri, r]),
  )
  putCommitRow(db, { did: snap.did, rev: snap.rev, cid: snap.commitCid, dataCid: snap.dataCid, since: null, seq: null, time: null, signingKey: snap.signingKey, sig: snap.sig, source: 'resync' }, snap.keyOrigin)
  putBlocks(db, snap.did, snap.blocks, snap.cidBytes)
  const meta = { rev: snap.rev, cid: snap.commitCid, seq: null, time: null, signingKey: snap.signingKey }
  for (const op of snap.records) {
    const uri = recordUri(snap.did, op.collection, op.rkey)
    const old = existing.get(uri)
    existing.delete(uri)
    if (old?.cid === op.cid) {
      diff.unchanged++
      continue
    }
    putRecord(db, snap.did, op, snap.rev, null)
    // 'resync': the snapshot proves the record as of this commit, not that this commit wrote it
    putVersion(db, snap.did, { ...op, prev: old?.cid ?? null }, 'resync', meta, 'resync')
    if (old) diff.updated++
    else diff.created++
  }
  const absence = new Map((snap.absent ?? []).map((a) => [recordUri(snap.did, a.collection, a.rkey), a.proofPath]))
  for (const old of existing.values()) {
    if (!inScope(old.collection)) continue
    db.prepare('DELETE FROM records WHERE uri = ?').run(old.uri)
    const proofPath = absence.get(old.uri) ?? []
    putVersion(db, snap.did, { action: 'delete', collection: old.collection, rkey: old.rkey, cid: null, prev: old.cid, proofPath }, 'delete', meta, 'resync')
    diff.deleted++
  }
  setRepoHead(db, snap.did, { rev: snap.rev, dataCid: snap.dataCid, headCid: snap.commitCid })
  return diff
}

/**
 * Account deleted: drops the repo's records and proof blocks (blocks are keyed by DID, so other repos'
 * proofs are untouched) and leaves a `purge` tombstone version per dropped record plus a
 * `repo_purges` row saying which versions lost their blocks. No commit proves a purge: the tombstone
 * carries the #account event's seq and time. Returns how many records were dropped.
 */
export function purgeRepo(db: Db, did: string, event: { seq: number | null; time: string | null } = { seq: null, time: null }): number {
  const head = db.prepare('SELECT rev, head_cid AS headCid FROM repos WHERE did = ?').get(did) as
    | { rev: string | null; headCid: string | null }
    | undefined
  const id = db.prepare('SELECT handle, handle_verified AS verified FROM identities WHERE did = ?').get(did) as
    | { handle: string | null; verified: number }
    | undefined
  const gone = db.prepare('SELECT uri, collection, rkey, cid FROM records WHERE uri >= ? AND uri < ? ORDER BY uri').all(...didUriRange(did)) as {
    uri: string
    collection: string
    rkey: string
    cid: string
  }[]
  const tomb = db.prepare(
    `INSERT INTO record_versions
       (uri, did, collection, rkey, action, cid, prev_cid, rev, commit_cid, seq, time, signing_key, proof_cids, handle, handle_verified)
     VALUES (?, ?, ?, ?, 'purge', NULL, ?, NULL, NULL, ?, ?, NULL, '[]', ?, ?)`,
  )
  for (const r of gone) tomb.run(r.uri, did, r.collection, r.rkey, r.cid, event.seq, event.time, id?.handle ?? null, id ? id.verified : null)
  // the DID's uri range of the (uri, rev) key, which holds each version's id (schema 11)
  const last = (db.prepare('SELECT MAX(id) AS id FROM record_versions WHERE uri >= ? AND uri < ?').get(...didUriRange(did)) as { id: number | null }).id
  if (last !== null) {
    db.prepare(
      `INSERT INTO repo_purges (did, seq, time, head_rev, head_cid, records, last_version_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(did, event.seq, event.time, head?.rev ?? null, head?.headCid ?? null, gone.length, last, nowIso())
  }
  db.prepare('DELETE FROM records WHERE uri >= ? AND uri < ?').run(...didUriRange(did))
  deleteBlocks(db, did)
  return gone.length
}

export interface RecordRow {
  uri: string
  did: string
  collection: string
  rkey: string
  cid: string
  rev: string
  valid: boolean
  invalidReason: string | null
  value: unknown
}

export interface RecordFilter {
  did?: string
  collection?: string
  /** include records of inactive repos (hidden by default) */
  includeHidden?: boolean
  limit?: number
  /** rkey to start after (pagination, with did + collection) */
  after?: string
}

export function listRecords(db: Db, f: RecordFilter = {}): RecordRow[] {
  // Only the filters given are written into the SQL: "@x IS NULL OR …" keeps SQLite from using the
  // uri range of a DID or records_by_collection.
  const where: string[] = []
  const params: Record<string, string | number> = { limit: f.limit ?? -1 }
  if (f.did !== undefined) {
    // the uri range when only the DID is given; did = @did lets records_by_collection serve both
    where.push('r.did = @did AND r.uri >= @lo AND r.uri < @hi')
    params.did = f.did
    ;[params.lo, params.hi] = didUriRange(f.did)
  }
  if (f.collection !== undefined) {
    where.push('r.collection = @collection')
    params.collection = f.collection
  }
  if (!f.includeHidden) where.push('COALESCE(p.active, 1) = 1')
  if (f.after !== undefined) {
    where.push('r.rkey > @after')
    params.after = f.after
  }
  const rows = db
    .prepare(
      `SELECT r.uri, r.did, r.collection, r.rkey, r.cid, r.rev, r.valid, r.invalid_reason AS invalidReason, r.value_json AS json
       FROM records r LEFT JOIN repos p ON p.did = r.did
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY r.did, r.collection, r.rkey LIMIT @limit`,
    )
    .all(params) as (Omit<RecordRow, 'value' | 'valid'> & { json: string; valid: number })[]
  return rows.map(({ json, valid, ...r }) => ({ ...r, valid: valid === 1, value: JSON.parse(json) }))
}
