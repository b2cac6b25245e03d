/** The summary `status` prints: cursor, records per collection, repos per state, rejections per reason. */
import { readCounters } from './counters.ts'
import { readQueueDepths, type QueueDepths } from './queues.ts'
import { listCursors, type CursorRow } from './cursor.ts'
import type { Db } from './db.ts'
import { getIdentityMode, type IdentityMode } from './identities.ts'
import { didUriRange } from './records.ts'

export interface StatusReport {
  cursors: CursorRow[]
  records: { total: number; invalid: number; hidden: number; byCollection: Record<string, number> }
  repos: {
    total: number
    byState: Record<string, number>
    byStatus: Record<string, number>
    /** repos not synchronized (up to 50), with why: what a resync must heal */
    desynchronized: { did: string; state: string; reason: string | null; since: string }[]
  }
  rejections: { total: number; byReason: Record<string, number> }
  versions: number
  commits: number
  identities: number
  /** handles that resolve back to their DID, and those that do not (or could not be checked) */
  handles: { verified: number; unverified: number }
  /** how signing keys were established: the last run's mode, identities per key source, doc mismatches */
  identity: {
    mode: IdentityMode | null
    modeSince: string | null
    bySource: Record<string, number>
    /** DIDs whose PLC directory document disagrees with their verified log (as last resolved) */
    docMismatches: number
    /** signing-key epochs known from verified logs, and how many of them have been rotated out */
    keyEpochs: number
    rotatedOut: number
  }
  info: { name: string; message: string | null; cursor: number | null; at: string }[]
  counters: Record<string, number>
  /** the mirror's queues at its last batch (`at`), each with its limit */
  queues: { at: string | null; depths: QueueDepths }
}

const grouped = (db: Db, sql: string): Record<string, number> =>
  Object.fromEntries((db.prepare(sql).all() as { k: string; n: number }[]).map((r) => [r.k, r.n]))

const count = (db: Db, sql: string): number => (db.prepare(sql).get() as { n: number }).n

/** Records of inactive repos: each repo's are one range of the records' key (`didUriRange`). */
function hiddenRecords(db: Db): number {
  const inRange = db.prepare('SELECT COUNT(*) FROM records WHERE uri >= ? AND uri < ?').pluck()
  const dids = db.prepare('SELECT did FROM repos WHERE active = 0').pluck().all() as string[]
  return dids.reduce((n, did) => n + (inRange.get(...didUriRange(did)) as number), 0)
}

export function readStatus(db: Db): StatusReport {
  const byCollection = grouped(db, 'SELECT collection AS k, COUNT(*) AS n FROM records GROUP BY collection ORDER BY collection')
  const byState = grouped(db, 'SELECT state AS k, COUNT(*) AS n FROM repos GROUP BY state')
  const byStatus = grouped(
    db,
    `SELECT CASE WHEN active = 1 THEN 'active' ELSE COALESCE(status, 'inactive') END AS k, COUNT(*) AS n FROM repos GROUP BY k`,
  )
  const byReason = grouped(db, 'SELECT reason AS k, COUNT(*) AS n FROM rejections GROUP BY reason ORDER BY reason')
  return {
    cursors: listCursors(db),
    records: {
      total: Object.values(byCollection).reduce((a, b) => a + b, 0),
      invalid: count(db, 'SELECT COUNT(*) AS n FROM records WHERE valid = 0'),
      hidden: hiddenRecords(db),
      byCollection,
    },
    repos: {
      total: count(db, 'SELECT COUNT(*) AS n FROM repos'),
      byState,
      byStatus,
      desynchronized: db
        .prepare(`SELECT did, state, state_reason AS reason, updated_at AS since FROM repos WHERE state <> 'synchronized' ORDER BY updated_at, did LIMIT 50`)
        .all() as StatusReport['repos']['desynchronized'],
    },
    rejections: { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason },
    versions: count(db, 'SELECT COUNT(*) AS n FROM record_versions'),
    commits: count(db, 'SELECT COUNT(*) AS n FROM commits'),
    identities: count(db, 'SELECT COUNT(*) AS n FROM identities'),
    handles: {
      verified: count(db, 'SELECT COUNT(*) AS n FROM identities WHERE handle IS NOT NULL AND handle_verified = 1'),
      unverified: count(db, 'SELECT COUNT(*) AS n FROM identities WHERE handle IS NOT NULL AND handle_verified = 0'),
    },
    identity: {
      mode: getIdentityMode(db)?.mode ?? null,
      modeSince: getIdentityMode(db)?.since ?? null,
      bySource: grouped(db, `SELECT COALESCE(key_source, 'unknown') AS k, COUNT(*) AS n FROM identities GROUP BY k ORDER BY k`),
      docMismatches: count(db, 'SELECT COUNT(*) AS n FROM identities WHERE doc_mismatch IS NOT NULL'),
      keyEpochs: count(db, 'SELECT COUNT(*) AS n FROM plc_keys'),
      rotatedOut: count(db, 'SELECT COUNT(*) AS n FROM plc_keys WHERE ended_by_cid IS NOT NULL'),
    },
    info: db.prepare('SELECT name, message, cursor, at FROM stream_info ORDER BY id DESC LIMIT 10').all() as never,
    counters: readCounters(db),
    queues: readQueueDepths(db),
  }
}

/** Most recent #info messages kept: the upstream may send any number of them. */
export const STREAM_INFO_KEPT = 1000

export function addStreamInfo(db: Db, name: string, message: string | null, cursor: number | null): void {
  const { lastInsertRowid } = db
    .prepare('INSERT INTO stream_info (name, message, cursor, at) VALUES (?, ?, ?, ?)')
    .run(name, message, cursor, new Date().toISOString())
  db.prepare('DELETE FROM stream_info WHERE id <= ?').run(Number(lastInsertRowid) - STREAM_INFO_KEPT)
}
