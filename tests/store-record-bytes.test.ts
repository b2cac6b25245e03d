// A record's bytes are kept once, as its block in `blocks` (schema 12): `records` holds the indexed
// JSON, and the block — which the record's proof needs anyway — is the CBOR. A database from before
// keeps every record's bytes through the migration: a record whose block was missing gets it from the
// old column.
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { encode } from '@atcute/cbor'
import { cidBinary, countBlocks, getBlock } from '../src/store/blocks.ts'
import { openDb, type Db } from '../src/store/db.ts'
import { getCurrentRecord } from '../src/store/history.ts'
import { writeSnapshot } from '../src/store/records.ts'
import { cidOfBlock } from '../src/verify/car.ts'
import { tempDir } from './helpers/mirror.ts'
import { databaseAtSchema, snapshot } from './helpers/store.ts'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const DID = 'did:web:bytes.example'
const NOTE = 'org.stormlightlabs.malfestio.note'
const columns = (db: Db): unknown[] => db.prepare("SELECT name FROM pragma_table_info('records')").pluck().all()

describe("a record's bytes", () => {
  it('are its block: the records row holds no copy', () => {
    const db = openDb(join(tmp.dir, 'fresh.db'))
    const snap = snapshot(DID, '3kaaaaaaaaa22', [`${NOTE}/n1`])
    const { cid, value } = snap.records[0]!
    writeSnapshot(db, snap, () => true)
    expect(columns(db)).not.toContain('value_cbor')
    expect(getCurrentRecord(db, `at://${DID}/${NOTE}/n1`)).toMatchObject({ cid, valueJson: value!.json })
    const bytes = getBlock(db, DID, cid!)
    expect(bytes).toEqual(snap.blocks.get(cid!))
    expect(cidOfBlock(bytes!)).toBe(cid)
    db.close()
  })

  it('survive the schema-11 migration: a block missing from blocks is taken from the old column', () => {
    const path = join(tmp.dir, 'v11.db')
    const old = databaseAtSchema(path, 11)
    const stored = encode({ $type: NOTE, title: 'already a block' })
    const columnOnly = encode({ $type: NOTE, title: 'only in the column' })
    old.prepare('INSERT INTO dids (did) VALUES (?)').run(DID)
    old.prepare('INSERT INTO blocks (repo, cid, bytes) VALUES (1, ?, ?)').run(cidBinary(cidOfBlock(stored)), stored)
    const insert = old.prepare(
      `INSERT INTO records (uri, did, collection, rkey, cid, rev, value_json, value_cbor, valid, indexed_at) VALUES (?, ?, ?, ?, ?, 'r', '{}', ?, 1, 'now')`,
    )
    insert.run(`at://${DID}/${NOTE}/a`, DID, NOTE, 'a', cidOfBlock(stored), stored)
    insert.run(`at://${DID}/${NOTE}/b`, DID, NOTE, 'b', cidOfBlock(columnOnly), columnOnly)
    // a DID no block of which was stored yet gets its id with its record's block
    insert.run(`at://did:web:new.example/${NOTE}/c`, 'did:web:new.example', NOTE, 'c', cidOfBlock(columnOnly), columnOnly)
    expect(columns(old)).toContain('value_cbor')
    old.close()

    const db = openDb(path)
    expect(columns(db)).not.toContain('value_cbor')
    expect(getBlock(db, DID, cidOfBlock(stored))).toEqual(stored)
    expect(getBlock(db, DID, cidOfBlock(columnOnly))).toEqual(columnOnly)
    expect(getBlock(db, 'did:web:new.example', cidOfBlock(columnOnly))).toEqual(columnOnly)
    expect(countBlocks(db)).toBe(3)
    expect(db.prepare('SELECT COUNT(*) FROM records').pluck().get()).toBe(3)
    db.close()
  })
})
