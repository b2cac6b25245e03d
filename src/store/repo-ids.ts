/**
 * Small integer ids for DIDs (`dids`), used in place of the DID text in the keys written for nearly
 * every event: blocks (repo, cid) and commits (repo, rev). A key of a few bytes instead of ~32
 * characters puts several times as many entries on each index page, and each batch dirties that
 * many fewer pages (bench: see README, "Where the time goes").
 */
import type { Db } from './db.ts'

/** SQL for the id of the DID bound at this `?`: `WHERE repo = ${REPO_OF_DID}` finds a DID's rows through the key. */
export const REPO_OF_DID = '(SELECT id FROM dids WHERE did = ?)'

/** The repo's id, or undefined when nothing of it was ever stored. */
export const knownRepoId = (db: Db, did: string): number | undefined => db.prepare('SELECT id FROM dids WHERE did = ?').pluck().get(did) as number | undefined

/** The repo's id in `dids`, created on first use. Call inside the write transaction. */
export function repoId(db: Db, did: string): number {
  return knownRepoId(db, did) ?? Number(db.prepare('INSERT INTO dids (did) VALUES (?)').run(did).lastInsertRowid)
}
