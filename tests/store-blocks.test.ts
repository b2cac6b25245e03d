// The blocks table keyed by (repo id, binary CID): writes with and without the CAR's CID bytes agree,
// reads answer by CID string, a purge touches one repo, paging walks every row once, and a database
// of schema 7 (CIDs as text) migrates with every block still found.
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { encode } from '@atcute/cbor'
import Database from 'better-sqlite3'
import { blocksPage, cidBinary, countBlocks, deleteBlocks, getBlock, getBlocks, putBlocks, type BlocksCursor } from '../src/store/blocks.ts'
import { openDb } from '../src/store/db.ts'
import { MIGRATIONS } from '../src/store/schema.ts'
import { checkBlock, cidOfBlock, readVerifiedCar } from '../src/verify/car.ts'
import { VerificationError } from '../src/verify/reasons.ts'
import { tempDir } from './helpers/mirror.ts'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'

/** n distinct DAG-CBOR blocks with their CIDs. */
const someBlocks = (n: number): [string, Uint8Array][] =>
  Array.from({ length: n }, () => {
    const bytes = encode({ $type: 'org.stormlightlabs.malfestio.note', text: randomBytes(24).toString('base64') })
    return [cidOfBlock(bytes), bytes]
  })

/** A CAR v1 of `blocks` (varint-free for small sizes: each section and the header stay under 128 bytes). */
function carOf(blocks: [string, Uint8Array][]): Uint8Array {
  const header = encode({ version: 1, roots: [] })
  const parts: Uint8Array[] = [Uint8Array.of(header.length), header]
  for (const [cid, bytes] of blocks) {
    const bin = cidBinary(cid)
    expect(bin.length + bytes.length).toBeLessThan(128)
    parts.push(Uint8Array.of(bin.length + bytes.length), bin, bytes)
  }
  return Buffer.concat(parts)
}

describe('blocks by (repo, binary CID)', () => {
  it('the CID bytes a CAR holds and the ones parsed from strings key the same rows', () => {
    const db = openDb(':memory:')
    const blocks = someBlocks(20)
    const car = readVerifiedCar(carOf(blocks))
    expect([...car.cidBytes.keys()]).toEqual(blocks.map(([cid]) => cid))
    for (const [cid, bin] of car.cidBytes) expect(Buffer.from(bin).equals(Buffer.from(cidBinary(cid)))).toBe(true)
    putBlocks(db, A, car.blocks, car.cidBytes)
    // the same blocks again, parsed from the strings: nothing new (same keys)
    putBlocks(db, A, blocks)
    expect(countBlocks(db)).toBe(20)
    for (const [cid, bytes] of blocks) expect(getBlock(db, A, cid)).toEqual(bytes)
    expect(getBlock(db, B, blocks[0]![0])).toBeUndefined()
    db.close()
  })

  it('reads by CID string, purges one repo only, and pages through every row once', () => {
    const db = openDb(':memory:')
    const a = someBlocks(37)
    const b = someBlocks(23)
    putBlocks(db, A, a)
    putBlocks(db, B, b)
    const some = [a[3]![0], a[9]![0], b[0]![0], 'bafyreinotacid']
    expect([...getBlocks(db, A, some).keys()]).toEqual([a[3]![0], a[9]![0]])

    const seen: string[] = []
    for (let after: BlocksCursor | null = null; ; ) {
      const page = blocksPage(db, after, 10)
      if (!page.length) break
      for (const r of page) {
        expect(() => checkBlock(r.cid, r.bytes)).not.toThrow()
        seen.push(`${r.did} ${r.cid}`)
      }
      after = page.at(-1)!.next
    }
    const all = [...a.map(([cid]) => `${A} ${cid}`), ...b.map(([cid]) => `${B} ${cid}`)]
    expect(seen.length).toBe(all.length)
    expect(new Set(seen)).toEqual(new Set(all))

    deleteBlocks(db, A)
    expect(countBlocks(db)).toBe(23)
    expect(getBlock(db, A, a[0]![0])).toBeUndefined()
    expect(getBlock(db, B, b[0]![0])).toEqual(b[0]![1])
    // a repo that never stored a block: nothing to purge, nothing created
    deleteBlocks(db, 'did:plc:cccccccccccccccccccccccc')
    expect(db.prepare('SELECT COUNT(*) FROM dids').pluck().get()).toBe(2)
    db.close()
  })

  it('a schema-7 database (CIDs as text) migrates: every block found by its CID, a corrupt CID reported by verify', () => {
    const path = `${tmp.dir}/v7.db`
    const old = new Database(path)
    for (const [i, sql] of MIGRATIONS.slice(0, 7).entries()) {
      old.exec(sql)
      old.pragma(`user_version = ${i + 1}`)
    }
    const a = someBlocks(15)
    const b = someBlocks(5)
    const insert = old.prepare('INSERT INTO blocks (did, cid, bytes) VALUES (?, ?, ?)')
    for (const [cid, bytes] of a) insert.run(A, cid, bytes)
    for (const [cid, bytes] of b) insert.run(B, cid, bytes)
    insert.run(B, 'not-a-cid', Buffer.from('x'))
    old.close()

    const db = openDb(path)
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length)
    expect(countBlocks(db)).toBe(21)
    for (const [cid, bytes] of a) expect(getBlock(db, A, cid)).toEqual(bytes)
    for (const [cid, bytes] of b) expect(getBlock(db, B, cid)).toEqual(bytes)
    const rows = blocksPage(db, null, 100)
    expect(rows.length).toBe(21)
    const bad = rows.filter((r) => {
      try {
        checkBlock(r.cid, r.bytes)
        return false
      } catch (err) {
        expect(err).toBeInstanceOf(VerificationError)
        return true
      }
    })
    expect(bad.map((r) => r.did)).toEqual([B])
    db.close()
  })
})
