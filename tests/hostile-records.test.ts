// A PDS signs whatever its owner wants. Commits whose signature, hashes and MST are genuine but whose
// record blocks are not DAG-CBOR, not maps, or nested 100 000 levels deep must not stop the mirror
// (before: a stack overflow or a decode error in the store path was a fatal "internal" error). They
// are kept as signed, flagged invalid with the reason; the honest records around them land.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encode } from '@atcute/cbor'
import { runMirror } from '../src/mirror/run.ts'
import { DEFAULTS } from '../src/mirror/config.ts'
import { openDb } from '../src/store/db.ts'
import { listRecords } from '../src/store/records.ts'
import { listRejections } from '../src/store/rejections.ts'
import { frameOf, startFakeRelay } from './helpers/fake-relay.ts'
import { startForgedAuthor, type ForgedAuthor } from './helpers/forge.ts'
import { tempDir } from './helpers/mirror.ts'

const NS = 'org.stormlightlabs.malfestio.'
let tmp: ReturnType<typeof tempDir>
let evil: ForgedAuthor
let honest: ForgedAuthor

beforeAll(async () => {
  tmp = tempDir()
  evil = await startForgedAuthor()
  honest = await startForgedAuthor()
})

afterAll(async () => {
  await evil?.close()
  await honest?.close()
  tmp?.cleanup()
})

/** a map {$type, title: [[[ … 0 … ]]]} nested `depth` arrays deep, as raw CBOR */
function deepRecord(type: string, depth: number): Uint8Array {
  const head = encode({ $type: type, title: 0 })
  const out = new Uint8Array(head.byteLength - 1 + depth + 1)
  out.set(head.subarray(0, head.byteLength - 1))
  out.fill(0x81, head.byteLength - 1, head.byteLength - 1 + depth)
  return out
}

describe('hostile record content under a genuine signature', () => {
  it('is kept flagged invalid with its reason; the mirror keeps running and honest records land', async () => {
    const createdAt = new Date().toISOString()
    const records = {
      fine: { path: `${NS}deck/3aaaaaaaaaaa2`, bytes: encode({ $type: `${NS}deck`, title: 'fine', createdAt }) },
      notCbor: { path: `${NS}note/3aaaaaaaaaaa3`, bytes: new Uint8Array([0xff, 0xfe, 0x00, 0x01]) },
      notMap: { path: `${NS}card/3aaaaaaaaaaa4`, bytes: encode([1, 2, 3]) },
      deep: { path: `${NS}collection/3aaaaaaaaaaa5`, bytes: deepRecord(`${NS}collection`, 100_000) },
      deepish: { path: `${NS}source.article/3aaaaaaaaaaa6`, bytes: deepRecord(`${NS}source.article`, 1_000) },
    }
    const first = await evil.genesis(1, Object.values(records))
    const second = await honest.genesis(2, [{ path: `${NS}deck/3bbbbbbbbbbb2`, bytes: encode({ $type: `${NS}deck`, title: 'after', createdAt }) }])
    const relay = await startFakeRelay([frameOf(first), frameOf(second)])
    const dbPath = `${tmp.dir}/hostile.db`
    try {
      const result = await runMirror({ ...DEFAULTS, service: relay.url, plcUrl: 'http://127.0.0.1:9', dbPath, cursor: 0, idleMs: 800, batchMs: 50 })
      expect(result.stoppedBy).toBe('idle')
      expect(result.stats.verified).toBe(2)
    } finally {
      await relay.close()
    }
    const db = openDb(dbPath)
    const rows = Object.fromEntries(listRecords(db, {}).map((r) => [r.uri.split('/').slice(-2).join('/'), r]))
    expect(listRejections(db)).toEqual([])
    db.close()
    const at = (p: string) => rows[p]!
    expect(at(records.fine.path)).toMatchObject({ valid: true, value: { title: 'fine' } })
    expect(at(records.notCbor.path)).toMatchObject({ valid: false, value: null })
    expect(at(records.notCbor.path).invalidReason).toMatch(/not DAG-CBOR/)
    expect(at(records.notMap.path)).toMatchObject({ valid: false, value: null, invalidReason: 'record block is not a map' })
    expect(at(records.deep.path)).toMatchObject({ valid: false, value: null, invalidReason: 'record nests deeper than 128 levels' })
    expect(at(records.deepish.path)).toMatchObject({ valid: false, invalidReason: 'record nests deeper than 128 levels' })
    expect(at(`${NS}deck/3bbbbbbbbbbb2`)).toMatchObject({ valid: true, value: { title: 'after' } })
  })
})
