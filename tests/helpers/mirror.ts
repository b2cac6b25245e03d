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
