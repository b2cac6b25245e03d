/**
 * The identity each DID had, now and over time (handle, signing key, PDS), for the audit trail; the
 * signing-key history proven by its PLC log, which key origin each commit has, and the stream-ordered
 * key floors that decide which keys later events may use.
 */
import { nowIso, type Db } from './db.ts'
import { REPO_OF_DID } from './repo-ids.ts'

export type KeySource = 'plc-log' | 'plc-directory' | 'did-web'

export interface IdentityRow {
  did: string
  handle: string | null
  handleVerified: boolean
  signingKey: string | null
  pds: string | null
  doc: unknown
  lastSeq: number | null
  resolvedAt: string
  /** where key, handle and PDS came from; null for rows written before this was recorded */
  keySource: KeySource | null
  /** CID of the last valid operation of the verified PLC log (key source `plc-log`) */
  plcLastOp: string | null
  /** why the directory's document disagrees with the verified log, when it does */
  docMismatch: string | null
}

/** What a resolution stores: the row's facts without the bookkeeping (seq, time) the store adds. */
export type IdentityInput = Pick<IdentityRow, 'did' | 'handle' | 'handleVerified' | 'signingKey' | 'pds' | 'doc'> &
  Partial<Pick<IdentityRow, 'plcLastOp' | 'docMismatch'>> & { keySource?: KeySource }

export function getIdentity(db: Db, did: string): IdentityRow | undefined {
  const r = db
    .prepare(
      `SELECT did, handle, handle_verified AS handleVerified, signing_key AS signingKey, pds, doc,
              last_seq AS lastSeq, resolved_at AS resolvedAt, key_source AS keySource, plc_last_op AS plcLastOp,
              doc_mismatch AS docMismatch
       FROM identities WHERE did = ?`,
    )
    .get(did) as (Omit<IdentityRow, 'handleVerified' | 'doc'> & { handleVerified: number; doc: string | null }) | undefined
  return r && { ...r, handleVerified: r.handleVerified === 1, doc: r.doc ? JSON.parse(r.doc) : null }
}

/**
 * Records what a DID resolves to; appends a history row when handle, key or PDS changed.
 * `seq` is the stream position the resolution applies from (null outside the stream).
 */
export function putIdentity(db: Db, id: IdentityInput, seq: number | null): void {
  const prev = getIdentity(db, id.did)
  db.prepare(
    `INSERT INTO identities (did, handle, handle_verified, signing_key, pds, doc, last_seq, resolved_at, key_source, plc_last_op, doc_mismatch)
     VALUES (@did, @handle, @verified, @key, @pds, @doc, @seq, @now, @source, @lastOp, @mismatch)
     ON CONFLICT (did) DO UPDATE SET handle = @handle, handle_verified = @verified, signing_key = @key, pds = @pds,
       doc = @doc, last_seq = COALESCE(@seq, last_seq), resolved_at = @now, key_source = @source, plc_last_op = @lastOp,
       doc_mismatch = @mismatch`,
  ).run({
    did: id.did,
    handle: id.handle,
    verified: id.handleVerified ? 1 : 0,
    key: id.signingKey,
    pds: id.pds,
    doc: JSON.stringify(id.doc ?? null),
    seq,
    now: nowIso(),
    source: id.keySource ?? null,
    lastOp: id.plcLastOp ?? null,
    mismatch: id.docMismatch ?? null,
  })
  const changed =
    !prev ||
    prev.handle !== id.handle ||
    prev.handleVerified !== id.handleVerified ||
    prev.signingKey !== id.signingKey ||
    prev.pds !== id.pds
  if (changed) {
    db.prepare(
      `INSERT INTO identity_history (did, handle, handle_verified, signing_key, pds, from_seq, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(id.did, id.handle, id.handleVerified ? 1 : 0, id.signingKey, id.pds, seq, nowIso())
  }
}

/** The DID was resolved again at `at` and found as the row says: only the row's age changes. */
export function markIdentityResolved(db: Db, did: string, at: string): void {
  db.prepare('UPDATE identities SET resolved_at = ? WHERE did = ?').run(at, did)
}

// ───────────── signing-key history (from verified PLC logs) ─────────────

/** A PLC operation: its CID and the directory's timestamp. */
export interface OpRef {
  cid: string
  createdAt: string
}

export interface KeyEpochRow {
  index: number
  signingKey: string
  op: OpRef
  endedBy: OpRef | null
}

/** Replaces the DID's key history with the one its newest verified log proves. */
export function putKeyHistory(db: Db, did: string, keys: readonly KeyEpochRow[]): void {
  db.prepare('DELETE FROM plc_keys WHERE did = ?').run(did)
  const stmt = db.prepare(
    'INSERT INTO plc_keys (did, idx, signing_key, op_cid, op_at, ended_by_cid, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  for (const k of keys) stmt.run(did, k.index, k.signingKey, k.op.cid, k.op.createdAt, k.endedBy?.cid ?? null, k.endedBy?.createdAt ?? null)
}

export function getKeyHistory(db: Db, did: string): KeyEpochRow[] {
  const rows = db
    .prepare('SELECT idx, signing_key, op_cid, op_at, ended_by_cid, ended_at FROM plc_keys WHERE did = ? ORDER BY idx')
    .all(did) as { idx: number; signing_key: string; op_cid: string; op_at: string; ended_by_cid: string | null; ended_at: string | null }[]
  return rows.map((r) => ({
    index: r.idx,
    signingKey: r.signing_key,
    op: { cid: r.op_cid, createdAt: r.op_at },
    endedBy: r.ended_by_cid ? { cid: r.ended_by_cid, createdAt: r.ended_at! } : null,
  }))
}

/** Where a signing key's authority comes from: the PLC operation that made it the DID's key. */
export interface KeyOrigin {
  signingKey: string
  /** the PLC operation that made the key valid */
  opCid: string
  createdAt: string
  /** the operation that replaced the key, if one has */
  endedBy: OpRef | null
  /** the key has been rotated out since (derived from the key history) */
  rotatedOut: boolean
  /** false when that operation is no longer in the DID's verified log (nullified by a recovery) */
  inLog: boolean
}

/**
 * The PLC operation that made `signingKey` the DID's key, from the verified key history: the epoch
 * begun by `opCid` when given, else the newest epoch of that key. Null when the key is not in the
 * DID's verified history (did:web, --trust-plc-directory, or unknown key).
 */
export function keyOrigin(db: Db, did: string, signingKey: string, opCid?: string): KeyOrigin | null {
  const row = db
    .prepare(
      `SELECT signing_key, op_cid, op_at, ended_by_cid, ended_at FROM plc_keys
       WHERE did = @did AND signing_key = @key AND (@op IS NULL OR op_cid = @op) ORDER BY idx DESC LIMIT 1`,
    )
    .get({ did, key: signingKey, op: opCid ?? null }) as
    | { signing_key: string; op_cid: string; op_at: string; ended_by_cid: string | null; ended_at: string | null }
    | undefined
  if (!row) return null
  const endedBy = row.ended_by_cid ? { cid: row.ended_by_cid, createdAt: row.ended_at! } : null
  return { signingKey: row.signing_key, opCid: row.op_cid, createdAt: row.op_at, endedBy, rotatedOut: endedBy !== null, inLog: true }
}

/**
 * The key origin recorded with a stored commit (and so with each record version it wrote: join on
 * did + rev), completed from the key history. Null when the commit was verified without a PLC log.
 */
export function commitKeyOrigin(db: Db, did: string, rev: string): KeyOrigin | null {
  const c = db.prepare(`SELECT signing_key, key_op_cid, key_op_at FROM commits WHERE repo = ${REPO_OF_DID} AND rev = ?`).get(did, rev) as
    | { signing_key: string; key_op_cid: string | null; key_op_at: string | null }
    | undefined
  if (!c?.key_op_cid) return null
  const known = keyOrigin(db, did, c.signing_key, c.key_op_cid)
  if (known) return known
  return { signingKey: c.signing_key, opCid: c.key_op_cid, createdAt: c.key_op_at ?? '', endedBy: null, rotatedOut: true, inLog: false }
}

// ───────────── key floors (stream order) ─────────────

/** From `seq` on (in `service`'s stream), keys older than the one begun by `opCid` are refused. */
export interface KeyFloorMark {
  seq: number
  opCid: string
  cause: string
}

export function getKeyFloors(db: Db, did: string, service: string): KeyFloorMark[] {
  return db
    .prepare('SELECT seq, op_cid AS opCid, cause FROM key_floors WHERE did = ? AND service = ? ORDER BY seq')
    .all(did, service) as KeyFloorMark[]
}

export function addKeyFloor(db: Db, did: string, service: string, mark: KeyFloorMark): void {
  db.prepare('INSERT OR IGNORE INTO key_floors (did, service, seq, op_cid, cause, at) VALUES (?, ?, ?, ?, ?, ?)').run(
    did,
    service,
    mark.seq,
    mark.opCid,
    mark.cause,
    nowIso(),
  )
}

// ───────────── identity mode of the runs ─────────────

export type IdentityMode = 'verify-plc-log' | 'trust-plc-directory'

/** Records the identity mode a run uses (status shows the last one, counters how many runs used each). */
export function recordIdentityMode(db: Db, mode: IdentityMode): void {
  db.prepare(
    `INSERT INTO run_settings (name, value, updated_at) VALUES ('identity.mode', ?, ?)
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  ).run(mode, nowIso())
  db.prepare(
    `INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1`,
  ).run(`runs.identity.${mode}`)
}

export function getIdentityMode(db: Db): { mode: IdentityMode; since: string } | null {
  const r = db.prepare(`SELECT value, updated_at FROM run_settings WHERE name = 'identity.mode'`).get() as
    | { value: IdentityMode; updated_at: string }
    | undefined
  return r ? { mode: r.value, since: r.updated_at } : null
}
