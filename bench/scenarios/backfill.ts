/**
 * Scenario setup: the start database for the verified runs. Every repo that exists at stream start
 * is backfilled (getRepo, full verification) through the mirror, as `backfill` does, so that every
 * commit of the stream is of a repo in scope and follows the stored head.
 */
import { DEFAULTS, type MirrorConfig } from '../../src/mirror/config.ts'
import { createMirror } from '../../src/mirror/mirror.ts'
import { backfillRepos } from '../../src/mirror/backfill.ts'
import { openDb } from '../../src/store/db.ts'
import { childMain } from '../lib/child.ts'

export interface BackfillInput {
  service: string
  http: string
  dbPath: string
  collections: string[]
  dids: string[]
}

export interface BackfillResult {
  repos: number
  failed: number
  records: number
  elapsedSec: number
}

childMain<BackfillInput, BackfillResult>(async (input, progress) => {
  const config: MirrorConfig = {
    ...DEFAULTS,
    service: input.service,
    dbPath: input.dbPath,
    plcUrl: input.http,
    handleResolverUrl: input.http,
    collections: input.collections,
  }
  const db = openDb(input.dbPath)
  const mirror = createMirror(db, config)
  const t0 = performance.now()
  let last = 0
  const p = await backfillRepos(mirror, input.dids, {
    concurrency: 4,
    onProgress: (p) => {
      if (Date.now() - last < 1000) return
      last = Date.now()
      progress(`backfill: ${p.done}/${p.total} repos, ${p.records} records in scope`)
    },
  })
  await mirror.close()
  db.close()
  return { repos: p.done, failed: p.failed, records: p.records, elapsedSec: (performance.now() - t0) / 1000 }
})
