/** What was refused and why. One row per (seq, did, reason): re-delivery does not duplicate it. */
import { nowIso, type Db } from './db.ts'

export interface Rejection {
  seq: number
  did: string
  reason: string
  message: string
  rev?: string | null
  at?: string
}

export function addRejection(db: Db, r: Rejection): void {
  db.prepare('INSERT OR IGNORE INTO rejections (seq, did, reason, message, rev, at) VALUES (?, ?, ?, ?, ?, ?)').run(
    r.seq,
    r.did,
    r.reason,
    r.message,
    r.rev ?? null,
    nowIso(),
  )
}

export function listRejections(db: Db, filter: { did?: string; reason?: string } = {}): Required<Rejection>[] {
  return db
    .prepare(
      `SELECT seq, did, reason, message, rev, at FROM rejections
       WHERE (@did IS NULL OR did = @did) AND (@reason IS NULL OR reason = @reason) ORDER BY seq, did, reason`,
    )
    .all({ did: filter.did ?? null, reason: filter.reason ?? null }) as never
}
