/** The verified content of a mirror database, without wall-clock columns, for "same mirror" checks. */
import { openDb } from '../../src/store/db.ts'

export interface MirrorContent {
  records: unknown[]
  versions: unknown[]
  commits: unknown[]
  repos: unknown[]
  blocks: string[]
  rejections: unknown[]
  cursors: unknown[]
}

export function mirrorContent(dbPath: string): MirrorContent {
  const db = openDb(dbPath, { readonly: true })
  try {
    const all = (sql: string) => db.prepare(sql).all()
    return {
      records: all('SELECT uri, did, collection, rkey, cid, rev, seq, value_json, valid, invalid_reason FROM records ORDER BY uri'),
      versions: all(
        'SELECT uri, action, cid, prev_cid, rev, commit_cid, seq, time, signing_key, proof_cids FROM record_versions ORDER BY uri, rev, action',
      ),
      commits: all('SELECT did, rev, cid, data_cid, since, seq, time, signing_key, hex(sig) AS sig, source FROM commits ORDER BY did, rev'),
      repos: all('SELECT did, rev, data_cid, head_cid, state, active, status, last_seq FROM repos ORDER BY did'),
      blocks: (all('SELECT d.did, hex(b.cid) AS cid FROM blocks b JOIN dids d ON d.id = b.repo ORDER BY d.did, b.cid') as { did: string; cid: string }[]).map((b) => `${b.did} ${b.cid}`),
      rejections: all('SELECT seq, did, reason, rev FROM rejections ORDER BY seq, did, reason'),
      cursors: all('SELECT service, seq, event_time FROM cursor ORDER BY service'),
    }
  } finally {
    db.close()
  }
}
