/** Store inputs for tests of the store alone: databases as older releases left them, and snapshots. */
import { encode } from '@atcute/cbor'
import Database from 'better-sqlite3'
import { cidBinary } from '../../src/store/blocks.ts'
import type { VerifiedSnapshot } from '../../src/store/records.ts'
import { MIGRATIONS } from '../../src/store/schema.ts'
import { cidOfBlock } from '../../src/verify/car.ts'

/** A database as an older release left it: the first `level` migrations, run as `migrate()` runs them. */
export function databaseAtSchema(path: string, level: number): Database.Database {
  const old = new Database(path)
  old.function('cid_binary', (cid: string) => cidBinary(cid))
  for (const [i, sql] of MIGRATIONS.slice(0, level).entries()) {
    old.exec(sql)
    old.pragma(`user_version = ${i + 1}`)
  }
  return old
}

/**
 * A snapshot of `did` holding `keys` ("collection/rkey"), each record's bytes in `blocks` under its
 * CID (as a verified snapshot carries them); the store writes what it is given.
 */
export function snapshot(did: string, rev: string, keys: string[]): VerifiedSnapshot {
  const commit = encode({ did, rev })
  const blocks = new Map<string, Uint8Array>([[cidOfBlock(commit), commit]])
  const records = keys.map((k) => {
    const [collection, rkey] = k.split('/') as [string, string]
    const value = { $type: collection, text: `${did} ${k}` }
    const cbor = encode(value)
    const cid = cidOfBlock(cbor)
    blocks.set(cid, cbor)
    return { action: 'create' as const, collection, rkey, cid, prev: null, proofPath: [], value: { json: JSON.stringify(value), valid: true, invalidReason: null } }
  })
  return {
    did,
    rev,
    commitCid: cidOfBlock(commit),
    dataCid: cidOfBlock(encode({ rev })),
    sig: new Uint8Array(64),
    signingKey: 'did:key:zQ3shtest',
    blocks,
    records,
  }
}
