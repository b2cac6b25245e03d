/** Per-repo state: the head the chain is checked against, sync state and account status. */
import { nowIso, type Db } from './db.ts'

export type RepoState = 'synchronized' | 'desynchronized' | 'resyncing'

export interface RepoRow {
  did: string
  rev: string | null
  dataCid: string | null
  headCid: string | null
  state: RepoState
  stateReason: string | null
  active: boolean
  status: string | null
  lastSeq: number | null
}

export function getRepo(db: Db, did: string): RepoRow | undefined {
  const r = db
    .prepare(
      `SELECT did, rev, data_cid AS dataCid, head_cid AS headCid, state, state_reason AS stateReason,
              active, status, last_seq AS lastSeq FROM repos WHERE did = ?`,
    )
    .get(did) as (Omit<RepoRow, 'active'> & { active: number }) | undefined
  return r && { ...r, active: r.active === 1 }
}

/** The repo's new signed head (a verified commit followed it): creates the row or moves its head. */
export function setRepoHead(db: Db, did: string, head: { rev: string; dataCid: string; headCid: string; seq?: number | null }): void {
  db.prepare(
    `INSERT INTO repos (did, rev, data_cid, head_cid, state, last_seq, updated_at)
       VALUES (@did, @rev, @dataCid, @headCid, 'synchronized', @seq, @now)
     ON CONFLICT (did) DO UPDATE SET rev = @rev, data_cid = @dataCid, head_cid = @headCid,
       last_seq = COALESCE(@seq, last_seq), updated_at = @now`,
  ).run({ did, ...head, seq: head.seq ?? null, now: nowIso() })
}

export function setRepoState(db: Db, did: string, state: RepoState, reason: string | null): void {
  db.prepare(
    `INSERT INTO repos (did, state, state_reason, updated_at) VALUES (@did, @state, @reason, @now)
     ON CONFLICT (did) DO UPDATE SET state = @state, state_reason = @reason, updated_at = @now`,
  ).run({ did, state, reason, now: nowIso() })
}

export function setRepoAccount(db: Db, did: string, active: boolean, status: string | null, seq: number): void {
  db.prepare(
    `UPDATE repos SET active = ?, status = ?, last_seq = MAX(COALESCE(last_seq, 0), ?), updated_at = ? WHERE did = ?`,
  ).run(active ? 1 : 0, status, seq, nowIso(), did)
}

export function listRepos(db: Db, state?: RepoState): RepoRow[] {
  const rows = db
    .prepare(
      `SELECT did, rev, data_cid AS dataCid, head_cid AS headCid, state, state_reason AS stateReason,
              active, status, last_seq AS lastSeq FROM repos WHERE (@state IS NULL OR state = @state) ORDER BY did`,
    )
    .all({ state: state ?? null }) as (Omit<RepoRow, 'active'> & { active: number })[]
  return rows.map((r) => ({ ...r, active: r.active === 1 }))
}
