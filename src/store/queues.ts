/**
 * The mirror's queue depths as of its last batch, with the limit of each: written in the batch's
 * transaction, read by `status` (from another process, or after a crash: "last known").
 */
import { nowIso, type Db } from './db.ts'

export interface QueueDepth {
  value: number
  /** the configured bound, when there is one */
  max: number | null
}

export type QueueDepths = Record<string, QueueDepth>

export function writeQueueDepths(db: Db, depths: QueueDepths): void {
  const stmt = db.prepare(
    `INSERT INTO queue_depths (name, value, max, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, max = excluded.max, updated_at = excluded.updated_at`,
  )
  const at = nowIso()
  for (const [name, d] of Object.entries(depths)) stmt.run(name, d.value, d.max, at)
}

export function readQueueDepths(db: Db): { at: string | null; depths: QueueDepths } {
  const rows = db.prepare('SELECT name, value, max, updated_at AS at FROM queue_depths ORDER BY name').all() as { name: string; value: number; max: number | null; at: string }[]
  return {
    at: rows.reduce<string | null>((a, r) => (a === null || r.at > a ? r.at : a), null),
    depths: Object.fromEntries(rows.map((r) => [r.name, { value: r.value, max: r.max }])),
  }
}
