// Records of one DID are found by the uri range [at://DID/, at://DID0) of the primary key (schema 9
// dropped records_by_did). The DIDs here are chosen so that plain prefix matching would mix them up:
// one is a prefix of another, and '.' sorts just below '/'.
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { encode } from '@atcute/cbor'
import Database from 'better-sqlite3'
import { cidBinary } from '../src/store/blocks.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { didUriRange, listRecords, purgeRepo, writeSnapshot, type VerifiedSnapshot } from '../src/store/records.ts'
import { setRepoAccount } from '../src/store/repos.ts'
import { MIGRATIONS } from '../src/store/schema.ts'
import { readStatus } from '../src/store/status.ts'
import { cidOfBlock } from '../src/verify/car.ts'
import { tempDir } from './helpers/mirror.ts'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const CO = 'did:web:example.co'
const COM = 'did:web:example.com'
const COM_AU = 'did:web:example.com.au'
const NOTE = 'org.stormlightlabs.malfestio.note'
const DECK = 'org.stormlightlabs.malfestio.deck'
const IN_SCOPE = (c: string): boolean => c.startsWith('org.stormlightlabs.malfestio.')

/** A snapshot of `did` holding `keys` ("collection/rkey"); the store writes what it is given. */
function snapshot(did: string, rev: string, keys: string[]): VerifiedSnapshot {
  const records = keys.map((k) => {
    const [collection, rkey] = k.split('/')
    const value = { $type: collection, text: `${did} ${k}` }
    const cbor = encode(value)
    return {
      action: 'create' as const,
      collection,
      rkey,
      cid: cidOfBlock(cbor),
      prev: null,
      proofPath: [],
      value: { json: JSON.stringify(value), cbor, valid: true, invalidReason: null },
    }
  })
  const commit = encode({ did, rev })
  return {
    did,
    rev,
    commitCid: cidOfBlock(commit),
    dataCid: cidOfBlock(encode({ rev })),
    sig: new Uint8Array(64),
    signingKey: 'did:key:zQ3shtest',
    blocks: new Map([[cidOfBlock(commit), commit], ...records.map((r): [string, Uint8Array] => [r.cid, r.value.cbor])]),
    records,
  }
}

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
    db.close()
  })

  it('a schema-8 database migrates: the index goes, its records are still found by DID', () => {
    const path = join(tmp.dir, 'v8.db')
    const old = new Database(path)
    old.function('cid_binary', (cid: string) => cidBinary(cid))
    for (const [i, sql] of MIGRATIONS.slice(0, 8).entries()) {
      old.exec(sql)
      old.pragma(`user_version = ${i + 1}`)
    }
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
