// Records of one DID are found by the uri range [at://DID/, at://DID0) of the primary key (schema 9
// dropped records_by_did). The DIDs here are chosen so that plain prefix matching would mix them up:
// one is a prefix of another, and '.' sorts just below '/'. Their commits are keyed by repo id (schema
// 10, below).
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openDb, type Db } from '../src/store/db.ts'
import { commitsPage, getCommitByCid } from '../src/store/history.ts'
import { didUriRange, listRecords, purgeRepo, writeSnapshot } from '../src/store/records.ts'
import { setRepoAccount } from '../src/store/repos.ts'
import { MIGRATIONS } from '../src/store/schema.ts'
import { readStatus } from '../src/store/status.ts'
import { tempDir } from './helpers/mirror.ts'
import { databaseAtSchema, snapshot } from './helpers/store.ts'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const CO = 'did:web:example.co'
const COM = 'did:web:example.com'
const COM_AU = 'did:web:example.com.au'
const NOTE = 'org.stormlightlabs.malfestio.note'
const DECK = 'org.stormlightlabs.malfestio.deck'
const IN_SCOPE = (c: string): boolean => c.startsWith('org.stormlightlabs.malfestio.')

const uris = (db: Db, did?: string): string[] => listRecords(db, { did, includeHidden: true }).map((r) => r.uri)

describe("a DID's records by uri range", () => {
  it('the range holds exactly the URIs of that DID', () => {
    const [lo, hi] = didUriRange(COM)
    for (const did of [CO, COM_AU]) expect(`at://${did}/${NOTE}/a` >= lo && `at://${did}/${NOTE}/a` < hi).toBe(false)
    expect(`at://${COM}/${NOTE}/a` >= lo && `at://${COM}/${NOTE}/a` < hi).toBe(true)
  })

  it('snapshots, listing, hiding and purging touch only the one DID', () => {
    const db = openDb(join(tmp.dir, 'range.db'))
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'").pluck().all() as string[])
    expect(indexes).not.toContain('records_by_did')
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'record_versions_by_did'").pluck().get()).toBeUndefined()

    for (const did of [CO, COM, COM_AU]) writeSnapshot(db, snapshot(did, '3kaaaaaaaaa22', [`${DECK}/d1`, `${NOTE}/n1`, `${NOTE}/n2`]), IN_SCOPE)
    expect(uris(db)).toHaveLength(9)
    expect(uris(db, COM)).toEqual([`at://${COM}/${DECK}/d1`, `at://${COM}/${NOTE}/n1`, `at://${COM}/${NOTE}/n2`])
    expect(listRecords(db, { did: COM, collection: NOTE, after: 'n1' }).map((r) => r.rkey)).toEqual(['n2'])

    // A later snapshot of COM without n1: only COM's n1 is deleted, the neighbours keep theirs.
    const diff = writeSnapshot(db, snapshot(COM, '3kaaaaaaaaa33', [`${DECK}/d1`, `${NOTE}/n2`]), IN_SCOPE)
    expect(diff).toEqual({ created: 0, updated: 0, deleted: 1, unchanged: 2 })
    expect(uris(db, CO)).toHaveLength(3)
    expect(uris(db, COM_AU)).toHaveLength(3)

    setRepoAccount(db, CO, false, 'takendown', 7)
    expect(readStatus(db).records.hidden).toBe(3)
    expect(listRecords(db).map((r) => r.did).sort()).toEqual([COM, COM, COM_AU, COM_AU, COM_AU])

    expect(purgeRepo(db, COM, { seq: 8, time: null })).toBe(2)
    expect(uris(db, COM)).toEqual([])
    expect(uris(db, CO)).toHaveLength(3)
    expect(uris(db, COM_AU)).toHaveLength(3)
    const tombs = db.prepare("SELECT did, COUNT(*) FROM record_versions WHERE action = 'purge' GROUP BY did").raw().all()
    expect(tombs).toEqual([[COM, 2]])

    // A purge names the repo's last version (schema 11 finds it in the DID's uri range): CO's records
    // are all deleted first, then COM_AU writes a later version, which must not be taken for CO's.
    writeSnapshot(db, snapshot(CO, '3kaaaaaaaaa44', []), IN_SCOPE)
    const coLast = db.prepare('SELECT MAX(id) FROM record_versions WHERE did = ?').pluck().get(CO) as number
    writeSnapshot(db, snapshot(COM_AU, '3kaaaaaaaaa44', [`${NOTE}/n3`]), IN_SCOPE)
    expect(purgeRepo(db, CO, { seq: 9, time: null })).toBe(0)
    expect(db.prepare('SELECT last_version_id FROM repo_purges WHERE did = ?').pluck().get(CO)).toBe(coLast)
    expect(db.prepare('SELECT MAX(id) FROM record_versions').pluck().get()).toBeGreaterThan(coLast)
    db.close()
  })

  it('a schema-8 database migrates: the index goes, its records are still found by DID', () => {
    const path = join(tmp.dir, 'v8.db')
    const old = databaseAtSchema(path, 8)
    old
      .prepare(`INSERT INTO records (uri, did, collection, rkey, cid, rev, value_json, value_cbor, valid, indexed_at) VALUES (?, ?, ?, 'n1', 'bafy', 'r', '{}', x'a0', 1, 'now')`)
      .run(`at://${COM}/${NOTE}/n1`, COM, NOTE)
    expect(old.prepare("SELECT name FROM sqlite_master WHERE name = 'records_by_did'").pluck().get()).toBe('records_by_did')
    old.close()

    const db = openDb(path)
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'records_by_did'").pluck().get()).toBeUndefined()
    expect(uris(db, COM)).toEqual([`at://${COM}/${NOTE}/n1`])
    expect(uris(db, CO)).toEqual([])
    db.close()
  })
})

// Commits are keyed by (repo id, rev) (schema 10). The DIDs are given ids out of their sort order
// here, so a page that followed the ids instead of the DIDs would come out in the wrong order.
describe("a DID's commits by repo id", () => {
  const revs = ['3kaaaaaaaaa22', '3kaaaaaaaaa33']
  const commitOf = (did: string, rev: string) => snapshot(did, rev, [`${NOTE}/n1`])

  it('found by DID and cid, walked in (DID, rev) order, written once', () => {
    const db = openDb(join(tmp.dir, 'commits.db'))
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'commits'").pluck().all()).toEqual(['commits_by_repo_rev'])
    for (const did of [COM_AU, CO, COM]) for (const rev of revs) writeSnapshot(db, commitOf(did, rev), IN_SCOPE)
    writeSnapshot(db, commitOf(COM, revs[0]!), IN_SCOPE)
    expect(db.prepare('SELECT COUNT(*) FROM commits').pluck().get()).toBe(6)
    expect(db.prepare('SELECT did FROM dids ORDER BY id').pluck().all()).toEqual([COM_AU, CO, COM])

    const wanted = commitOf(COM, revs[1]!)
    expect(getCommitByCid(db, COM, wanted.commitCid)).toMatchObject({ did: COM, rev: revs[1], cid: wanted.commitCid, source: 'resync' })
    expect(getCommitByCid(db, CO, wanted.commitCid)).toBeUndefined()

    const walked: string[] = []
    for (let after = { did: '', rev: '' }; ; ) {
      const page = commitsPage(db, after, 4)
      if (!page.length) break
      walked.push(...page.map((c) => `${c.did} ${c.rev}`))
      after = page.at(-1)!
    }
    expect(walked).toEqual([CO, COM, COM_AU].flatMap((did) => revs.map((rev) => `${did} ${rev}`)))
    db.close()
  })

  it('a schema-9 database migrates: each commit gets its DID id (ids already given to blocks are kept)', () => {
    const path = join(tmp.dir, 'v9.db')
    const old = databaseAtSchema(path, 9)
    old.prepare('INSERT INTO dids (did) VALUES (?)').run(COM)
    const insert = old.prepare(
      `INSERT INTO commits (did, rev, cid, data_cid, since, seq, time, signing_key, sig, source, key_op_cid, key_op_at)
       VALUES (?, ?, ?, 'bafydata', NULL, 5, 'then', 'did:key:z', x'00', 'firehose', 'bafyop', 'when')`,
    )
    insert.run(CO, revs[0], 'bafyco')
    insert.run(COM, revs[0], 'bafycom')
    old.close()

    const db = openDb(path)
    expect(db.prepare('SELECT d.did, c.did FROM commits c JOIN dids d ON d.id = c.repo ORDER BY c.did').raw().all()).toEqual([[CO, CO], [COM, COM]])
    expect(db.prepare('SELECT id FROM dids WHERE did = ?').pluck().get(COM)).toBe(1)
    expect(getCommitByCid(db, COM, 'bafycom')).toMatchObject({ rev: revs[0], seq: 5, signingKey: 'did:key:z' })
    expect(db.prepare('SELECT key_op_cid, key_op_at FROM commits WHERE did = ?').raw().get(CO)).toEqual(['bafyop', 'when'])
    expect(commitsPage(db, { did: '', rev: '' }, 10).map((c) => c.did)).toEqual([CO, COM])
    db.close()
  })
})
