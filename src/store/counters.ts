/** Persistent counters (events seen by type, stale no-ops, bad frames) shown by `status`. */
import type { Db } from './db.ts'

export function bumpCounters(db: Db, deltas: Map<string, number>): void {
  const stmt = db.prepare(
    'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
  )
  for (const [name, delta] of deltas) if (delta) stmt.run(name, delta)
}

export function readCounters(db: Db): Record<string, number> {
  const rows = db.prepare('SELECT name, value FROM counters ORDER BY name').all() as { name: string; value: number }[]
  return Object.fromEntries(rows.map((r) => [r.name, r.value]))
}
