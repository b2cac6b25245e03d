/** The durable stream cursor, one row per upstream service. It only ever moves forward. */
import { nowIso, type Db } from './db.ts'

export function getCursor(db: Db, service: string): number | undefined {
  const row = db.prepare('SELECT seq FROM cursor WHERE service = ?').get(service) as { seq: number } | undefined
  return row?.seq
}

/** Stores `seq` unless a higher cursor is already stored (a replay never lowers it). */
export function advanceCursor(db: Db, service: string, seq: number): void {
  db.prepare(
    `INSERT INTO cursor (service, seq, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (service) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
     WHERE excluded.seq > cursor.seq`,
  ).run(service, seq, nowIso())
}

/** Records the upstream's `time` of the event at `seq`, if `seq` is still the stored cursor. */
export function setCursorEventTime(db: Db, service: string, seq: number, eventTime: string): void {
  db.prepare('UPDATE cursor SET event_time = ? WHERE service = ? AND seq = ?').run(eventTime, service, seq)
}

export interface CursorRow {
  service: string
  seq: number
  updatedAt: string
  /** the upstream's time of the event at `seq` (null before it is known) */
  eventTime: string | null
}

export function listCursors(db: Db): CursorRow[] {
  return db.prepare('SELECT service, seq, updated_at AS updatedAt, event_time AS eventTime FROM cursor ORDER BY service').all() as never
}
