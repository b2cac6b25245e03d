// Backfill on a real dev-env PDS + PLC: records written before any subscription are found
// (listRepos + describeRepo on a PDS; listReposByCollection on a relay), resynced with full
// verification, and the mirror then equals what the PDS's listRecords serves — through the API and
// through the real CLI process.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { backfillRepos, type BackfillProgress } from '../src/mirror/backfill.ts'
import { MALFESTIO_COLLECTIONS as SCOPE } from '../src/mirror/config.ts'
import { discoverRepos, DiscoveryError } from '../src/mirror/discover.ts'
import { createMirror } from '../src/mirror/mirror.ts'
import { runMirror } from '../src/mirror/run.ts'
import { getBlock } from '../src/store/blocks.ts'
import { openDb } from '../src/store/db.ts'
import { readStatus } from '../src/store/status.ts'
import {
  createAccounts, currentSeq, deactivate, seedMalfestio, startDevnet, writeRecord, xrpcQuery,
  MALFESTIO_NSIDS, OTHER_COLLECTION, sampleMalfestio, type Devnet, type TestAccount,
} from './helpers/devnet.ts'
import { runCli } from './helpers/cli-process.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let holders: TestAccount[] // accounts with Malfestio records
let outsider: TestAccount // only records outside Malfestio
let inactive: TestAccount // Malfestio records, then deactivated

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  holders = await createAccounts(net, 3, 'fill')
  await seedMalfestio(net, holders)
  ;[outsider] = await createAccounts(net, 1, 'outside')
  await writeRecord(net, outsider!.did, OTHER_COLLECTION, { anything: 1 })
  await writeRecord(net, outsider!.did, 'app.bsky.feed.post', { text: 'no decks here', createdAt: new Date().toISOString() })
  ;[inactive] = await createAccounts(net, 1, 'gone')
  await writeRecord(net, inactive!.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'hidden later' }))
  await deactivate(net, inactive!.did)
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

const holderDids = () => holders.map((a) => a.did).sort()

/**
 * A relay's collection index (the dev network has no relay): answers listReposByCollection from the
 * PDS's own describeRepo, `pageSize` repos per page, and logs every request. No describeServer (not a PDS).
 */
async function startCollectionIndex(dids: string[], pageSize = 2): Promise<{ url: string; requests: URL[]; close(): Promise<void> }> {
  const requests: URL[] = []
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    requests.push(url)
    if (url.pathname !== '/xrpc/com.atproto.sync.listReposByCollection') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'MethodNotImplemented' }))
      return
    }
    const collection = url.searchParams.get('collection')!
    const holding: string[] = []
    for (const did of dids) {
      const d = await xrpcQuery(net, 'com.atproto.repo.describeRepo', { repo: did })
      if ((d.collections as string[]).includes(collection)) holding.push(did)
    }
    const start = Number(url.searchParams.get('cursor') ?? 0)
    const page = holding.slice(start, start + pageSize)
    const body = { repos: page.map((did) => ({ did })), ...(start + pageSize < holding.length ? { cursor: String(start + pageSize) } : {}) }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  }
}

describe('discovery', () => {
  it('on a PDS: listRepos + describeRepo finds exactly the active repos holding Malfestio records', async () => {
    const found = await discoverRepos(net.pdsUrl, SCOPE)
    expect(found.method).toBe('listRepos+describeRepo')
    expect(found.dids).toEqual(holderDids())
    expect(found.dids).not.toContain(outsider.did)
    expect(found.dids).not.toContain(inactive.did)
  })

  it('on a relay: listReposByCollection once per exact NSID, following cursors; never listRepos', async () => {
    const all = [...holders, outsider].map((a) => a.did)
    const index = await startCollectionIndex(all)
    try {
      const found = await discoverRepos(index.url, ['org.stormlightlabs.malfestio.*'])
      expect(found.method).toBe('listReposByCollection')
      expect(found.dids).toEqual(holderDids())
      const asked = index.requests.filter((u) => u.pathname.endsWith('listReposByCollection'))
      expect(new Set(asked.map((u) => u.searchParams.get('collection')))).toEqual(new Set(SCOPE))
      // three holders, two per page: every collection was asked twice (second page via cursor)
      expect(asked.filter((u) => u.searchParams.get('collection') === MALFESTIO_NSIDS.deck).map((u) => u.searchParams.get('cursor'))).toEqual([null, '2'])
      expect(index.requests.some((u) => u.pathname.includes('listRepos') && !u.pathname.includes('ByCollection'))).toBe(false)
    } finally {
      await index.close()
    }
  })

  it('an upstream that is neither a PDS nor serves listReposByCollection gets a clear error', async () => {
    const index = await startCollectionIndex([])
    const broken = createServer((_req, res) => res.writeHead(501).end('{"error":"MethodNotImplemented"}'))
    broken.listen(0, '127.0.0.1')
    await once(broken, 'listening')
    try {
      const url = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`
      const err = await discoverRepos(url, SCOPE).catch((e) => e)
      expect(err).toBeInstanceOf(DiscoveryError)
      expect(err.message).toMatch(/listReposByCollection failed .*MethodNotImplemented.*--did/)
    } finally {
      broken.close()
      await index.close()
    }
  })
})

describe('backfill', () => {
  it('on a fresh database equals listRecords for every Malfestio collection; again is a no-op; the live chain continues', async () => {
    const dbPath = `${tmp.dir}/api.db`
    const config = mirrorConfig(net, dbPath)
    const { dids } = await discoverRepos(net.pdsUrl, SCOPE)
    let db = openDb(dbPath)
    let mirror = createMirror(db, config)
    const progress: BackfillProgress[] = []
    const report = await backfillRepos(mirror, dids, { onProgress: (p) => progress.push(p) })
    await mirror.close()
    db.close()

    const expected = await pdsSnapshot(net, holderDids())
    expect(Object.keys(expected).length).toBeGreaterThan(20)
    expect(mirrorSnapshot(dbPath)).toEqual(expected)
    expect(report).toMatchObject({ total: 3, done: 3, failed: 0, records: Object.keys(expected).length })
    expect(report.repos.every((r) => r.ok && r.diff.created > 0 && r.diff.deleted === 0)).toBe(true)
    expect(progress[0]).toMatchObject({ total: 3, done: 0 })
    expect(progress.map((p) => p.done)).toEqual([0, 1, 2, 3])
    expect(progress.at(-1)!.etaSec).toBe(0)

    // every collection is represented and every record came with its proof blocks
    db = openDb(dbPath)
    const status = readStatus(db)
    expect(Object.keys(status.records.byCollection).sort()).toEqual([...SCOPE].sort())
    expect(status.repos.byState).toEqual({ synchronized: 3 })
    expect(status.versions).toBe(Object.keys(expected).length)
    const rows = db.prepare('SELECT did, cid FROM records').all() as { did: string; cid: string }[]
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.filter((r) => !getBlock(db, r.did, r.cid))).toEqual([])

    // a second backfill changes nothing
    mirror = createMirror(db, config)
    const again = await backfillRepos(mirror, dids)
    await mirror.close()
    const perDid = (did: string) => Object.keys(expected).filter((u) => u.startsWith(`at://${did}/`)).length
    expect(again.repos.map((r) => r.ok && r.diff)).toEqual(dids.map((did) => ({ created: 0, updated: 0, deleted: 0, unchanged: perDid(did) })))
    expect(readStatus(db).versions).toBe(status.versions)
    db.close()

    // following the firehose from here continues each repo's chain from the backfilled head
    const from = await currentSeq(net)
    const added = await writeRecord(net, holders[0]!.did, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: Object.keys(expected)[0]! }))
    const run = await runMirror(mirrorConfig(net, dbPath, { cursor: from, idleMs: 800 }))
    expect(run.stats.verified).toBe(1)
    expect(run.stats.resyncs).toBe(0)
    expect(run.stats.rejected).toBe(0)
    expect(mirrorSnapshot(dbPath)[added.uri]?.cid).toBe(added.cid)
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, holderDids()))
  })

  it('the CLI: backfill --json on a fresh database, progress on stderr, then resync --did', async () => {
    const dbPath = `${tmp.dir}/cli.db`
    const common = ['--db', dbPath, '--plc', net.plcUrl, '--handle-resolver', net.pdsUrl]
    const out = await runCli(['backfill', '--relay', net.pdsUrl, ...common, '--json'], { npx: true })
    expect(out.stderr).not.toMatch(/error/i)
    expect(out.code).toBe(0)
    const expected = await pdsSnapshot(net, holderDids())
    const report = JSON.parse(out.stdout)
    expect(report).toMatchObject({ method: 'listRepos+describeRepo', total: 3, done: 3, failed: 0, records: Object.keys(expected).length })
    expect(report.repos.map((r: { did: string }) => r.did)).toEqual(holderDids())
    // progress: repos done / total, records, ETA
    expect(out.stderr).toContain('backfill: 3 repos hold org.stormlightlabs.malfestio.*')
    expect(out.stderr).toMatch(new RegExp(`3/3 repos, ${Object.keys(expected).length} records, 0 failed, ETA 0 s`))
    expect(mirrorSnapshot(dbPath)).toEqual(expected)

    const status = await runCli(['status', '--db', dbPath, '--json'])
    expect(status.code).toBe(0)
    const s = JSON.parse(status.stdout)
    expect(s.repos.byState).toEqual({ synchronized: 3 })
    expect(s.repos.byStatus).toEqual({ active: 3 })
    expect(s.handles).toEqual({ verified: 3, unverified: 0 })

    // resync one repo by DID: nothing changed upstream, so nothing changes here
    const did = holderDids()[1]!
    const held = Object.keys(expected).filter((u) => u.startsWith(`at://${did}/`)).length
    const one = await runCli(['resync', '--did', did, '--relay', net.pdsUrl, ...common, '--json'])
    expect(one.code).toBe(0)
    expect(JSON.parse(one.stdout).repos).toEqual([{ did, ok: true, rev: expect.any(String), diff: { created: 0, updated: 0, deleted: 0, unchanged: held } }])
    expect(one.stderr).toContain('1/1 repos')

    const usage = await runCli(['resync', '--db', dbPath])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('resync needs --did DID (repeatable) or --desynchronized')
  }, 240_000)
})
