/** Test helpers: a temporary mirror database and the comparison "mirror equals the PDS". */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULTS, type MirrorConfig } from '../../src/mirror/config.ts'
import { openDb } from '../../src/store/db.ts'
import { listRecords } from '../../src/store/records.ts'
import { listAllRecords, MALFESTIO_COLLECTIONS, type Devnet, type ListedRecord } from './devnet.ts'

export function tempDir(prefix = 'mm-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function mirrorConfig(net: Devnet, dbPath: string, over: Partial<MirrorConfig> = {}): MirrorConfig {
  return {
    ...DEFAULTS,
    service: net.firehoseUrl,
    plcUrl: net.plcUrl,
    dbPath,
    handleResolverUrl: net.pdsUrl,
    batchMs: 50,
    ...over,
  }
}

export type Snapshot = Record<string, { cid: string; value: unknown }>

/** What the PDS serves for every Malfestio collection of these DIDs, keyed by URI. */
export async function pdsSnapshot(net: Devnet, dids: string[]): Promise<Snapshot> {
  const out: Snapshot = {}
  for (const did of dids) {
    for (const c of MALFESTIO_COLLECTIONS) {
      for (const r of (await listAllRecords(net, did, c)) as ListedRecord[]) out[r.uri] = { cid: r.cid, value: r.value }
    }
  }
  return out
}

/** What the mirror holds (visible records), keyed by URI. */
export function mirrorSnapshot(dbPath: string, opts: { includeHidden?: boolean } = {}): Snapshot {
  const db = openDb(dbPath, { mustExist: true })
  try {
    const out: Snapshot = {}
    for (const r of listRecords(db, { includeHidden: opts.includeHidden })) out[r.uri] = { cid: r.cid, value: r.value }
    return out
  } finally {
    db.close()
  }
}

/** Everything the mirror holds that must not depend on how it got there (no timestamps, no counters). */
export function dbContent(dbPath: string) {
  const db = openDb(dbPath, { mustExist: true })
  try {
    const all = (sql: string) => db.prepare(sql).all()
    return {
      records: all('SELECT uri, cid, rev, seq, valid, value_json FROM records ORDER BY uri'),
      versions: all('SELECT uri, rev, action, cid, prev_cid, commit_cid, seq, signing_key FROM record_versions ORDER BY uri, rev, action'),
      commits: all('SELECT did, rev, cid, data_cid, since, seq, source FROM commits ORDER BY did, rev'),
      blocks: all('SELECT d.did, hex(b.cid) AS cid, length(b.bytes) AS n FROM blocks b JOIN dids d ON d.id = b.repo ORDER BY d.did, b.cid'),
      repos: all('SELECT did, rev, data_cid, head_cid, state, active, status FROM repos ORDER BY did'),
      identities: all('SELECT did, handle, signing_key, pds FROM identities ORDER BY did'),
      rejections: all('SELECT seq, did, reason FROM rejections ORDER BY seq, did, reason'),
    }
  } finally {
    db.close()
  }
}
