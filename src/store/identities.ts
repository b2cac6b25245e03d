/** The identity each DID had, now and over time (handle, signing key, PDS), for the audit trail. */
import { nowIso, type Db } from './db.ts'

export interface IdentityRow {
  did: string
  handle: string | null
  handleVerified: boolean
  signingKey: string | null
  pds: string | null
  doc: unknown
  lastSeq: number | null
  resolvedAt: string
}

export function getIdentity(db: Db, did: string): IdentityRow | undefined {
  const r = db
    .prepare(
      `SELECT did, handle, handle_verified AS handleVerified, signing_key AS signingKey, pds, doc,
              last_seq AS lastSeq, resolved_at AS resolvedAt FROM identities WHERE did = ?`,
    )
    .get(did) as (Omit<IdentityRow, 'handleVerified' | 'doc'> & { handleVerified: number; doc: string | null }) | undefined
  return r && { ...r, handleVerified: r.handleVerified === 1, doc: r.doc ? JSON.parse(r.doc) : null }
}

/**
 * Records what a DID resolves to; appends a history row when handle, key or PDS changed.
 * `seq` is the stream position the resolution applies from (null outside the stream).
 */
export function putIdentity(
  db: Db,
  id: { did: string; handle: string | null; handleVerified: boolean; signingKey: string | null; pds: string | null; doc: unknown },
  seq: number | null,
): void {
  const prev = getIdentity(db, id.did)
  db.prepare(
    `INSERT INTO identities (did, handle, handle_verified, signing_key, pds, doc, last_seq, resolved_at)
     VALUES (@did, @handle, @verified, @key, @pds, @doc, @seq, @now)
     ON CONFLICT (did) DO UPDATE SET handle = @handle, handle_verified = @verified, signing_key = @key, pds = @pds,
       doc = @doc, last_seq = COALESCE(@seq, last_seq), resolved_at = @now`,
  ).run({
    did: id.did,
    handle: id.handle,
    verified: id.handleVerified ? 1 : 0,
    key: id.signingKey,
    pds: id.pds,
    doc: JSON.stringify(id.doc ?? null),
    seq,
    now: nowIso(),
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
