// A known run, end to end through the CLI: `sync --serve` follows a relay serving real dev-env frames
// with one signature forged, and a separate `serve` process reads the same database file. /metrics
// (parsed) must hold exactly the counts the frames imply; /health, the XRPC reads and the deck view
// answer from both processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BytesWrapper } from '@atcute/cbor'
import type { CommitEvent } from '../src/firehose/events.ts'
import { createAccounts, seedMalfestio, startDevnet, type Devnet, type SeedSummary, type TestAccount } from './helpers/devnet.ts'
import { startCli, waitFor, type CliProcess } from './helpers/cli-process.ts'
import { captureFrames, editCommitBlock, eventOf, frameOf, startFakeRelay, type FakeRelay } from './helpers/fake-relay.ts'
import { tempDir } from './helpers/mirror.ts'

const MALFESTIO = 'org.stormlightlabs.malfestio.'

/** Prometheus text exposition → { 'name{a="x",b="y"}': value } (labels sorted). */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels = m[3] ? [...m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort() : []
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[4]))
  }
  return out
}

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let accounts: TestAccount[]
let seed: SeedSummary
let relay: FakeRelay
let frames: Uint8Array[]
let forged: CommitEvent

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir('mm-metrics-')
  accounts = await createAccounts(net, 3, 'met')
  seed = await seedMalfestio(net, accounts)
  frames = await captureFrames(net.subscribeUrl, 0)
  // forge the signature of a mid-run commit of the first account
  const commits = frames.map((f, i) => ({ i, e: eventOf(f) })).filter((x) => x.e.type === 'commit' && (x.e as CommitEvent).repo === accounts[0]!.did)
  const target = commits[Math.floor(commits.length / 2)]!
  forged = await editCommitBlock(target.e as CommitEvent, (c) => {
    const sig = new Uint8Array(c.sig.buf)
    sig[10] ^= 0x01
    c.sig = new BytesWrapper(sig)
  })
  frames[target.i] = frameOf(forged)
  relay = await startFakeRelay(frames)
}, 180_000)

afterAll(async () => {
  await relay?.close()
  await net?.close()
  tmp?.cleanup()
})

/** What the frames imply, counted here independently of the mirror. */
function expected() {
  const events = frames.map(eventOf)
  const byType: Record<string, number> = {}
  for (const e of events) byType[e.type] = (byType[e.type] ?? 0) + 1
  const inScope = new Set<string>()
  let verified = 0
  let passthrough = 0
  for (const e of events) {
    if (e.type !== 'commit') continue
    if (!inScope.has(e.repo) && e.ops.some((o) => o.path.startsWith(MALFESTIO))) inScope.add(e.repo)
    if (inScope.has(e.repo)) verified++
    else passthrough++
  }
  const last = events.at(-1) as { seq: number }
  return { byType, verified: verified - 1, passthrough, repos: inScope.size, lastSeq: last.seq }
}

const urlIn = (p: CliProcess) => /serving .* at (http:\/\/\S+)/.exec(p.stderr())?.[1]

describe('a known run: sync --serve, and serve beside it', () => {
  it('exports exactly what the run did, live and from the database', async () => {
    const dbPath = `${tmp.dir}/known.db`
    const want = expected()
    const net0 = ['--plc', net.plcUrl, '--handle-resolver', net.pdsUrl]
    const sync = startCli(['sync', '--relay', relay.url, '--db', dbPath, '--cursor', '0', '--serve', '0', ...net0])
    let serve: CliProcess | undefined
    try {
      const live = await waitFor('sync --serve to listen', () => urlIn(sync), 60_000)
      const scrape = async (base: string) => parseProm(await (await fetch(`${base}/metrics`)).text())
      // caught up: the cursor is the last seq and nothing is in flight
      const m = await waitFor(
        'the run to finish',
        async () => {
          const x = await scrape(live)
          return x.get('malfestio_cursor') === want.lastSeq && x.get('malfestio_queue_depth') === 0 ? x : undefined
        },
        90_000,
      )
      // events received by type, commits verified and refused by reason, resyncs
      for (const [type, n] of Object.entries(want.byType)) expect([type, m.get(`malfestio_events_received_total{type="${type}"}`)]).toEqual([type, n])
      expect(m.get('malfestio_commits_verified_total')).toBe(want.verified)
      expect([...m.keys()].filter((k) => k.startsWith('malfestio_rejections_total'))).toEqual(['malfestio_rejections_total{reason="bad-signature"}'])
      expect(m.get('malfestio_rejections_total{reason="bad-signature"}')).toBe(1)
      expect(m.get('malfestio_mirror_events_total{name="frames.passthrough"}')).toBe(want.passthrough)
      // every repo is met mid-stream (its genesis commit touches no Malfestio record): one resync each,
      // to the repo's head, after which the rest of the backlog is proven history (stale)
      expect(m.get('malfestio_resync_attempts_total')).toBe(want.repos)
      expect(m.get('malfestio_resyncs_total{outcome="ok"}')).toBe(want.repos)
      expect(m.get('malfestio_mirror_events_total{name="commits.stale"}')).toBeGreaterThan(0)
      // cursor, lag, queue, DID resolution, SQLite latency
      expect(m.get('malfestio_last_seq')).toBe(want.lastSeq)
      expect(m.get('malfestio_lag_seconds')).toBeGreaterThanOrEqual(0)
      expect(m.get('malfestio_cursor_event_timestamp_seconds')! * 1000).toBe(Date.parse((eventOf(frames.at(-1)!) as { time: string }).time))
      expect(m.get('malfestio_did_resolutions_total')).toBeGreaterThan(want.verified)
      expect(m.get('malfestio_did_resolution_cache_hits_total')).toBeGreaterThan(want.verified - 10)
      expect(m.get('malfestio_did_resolution_fetches_total')).toBeGreaterThanOrEqual(want.repos)
      expect(m.get('malfestio_did_resolution_fetches_total')).toBeLessThan(m.get('malfestio_did_resolutions_total')!)
      // a new database proves no identity yet: every DID came from the directory
      expect(m.get('malfestio_did_resolution_from_store_total')).toBe(0)
      expect(m.get('malfestio_sqlite_write_seconds_count')).toBeGreaterThan(0)
      expect(m.get('malfestio_sqlite_write_seconds_sum')).toBeGreaterThan(0)
      expect(m.get('malfestio_repos{state="synchronized"}')).toBe(want.repos)
      expect(m.get('malfestio_connected')).toBe(1)
      expect(m.get('process_cpu_seconds_total')).toBeGreaterThan(0)

      const h = await (await fetch(`${live}/health`)).json()
      expect(h).toMatchObject({ ok: true, source: 'live', connection: 'connected', cursor: want.lastSeq, service: relay.url, queueDepth: 0 })

      // a second process on the same database file: reads, health and the database's counters
      serve = startCli(['serve', '--db', dbPath, '--port', '0', '--json'])
      const other = await waitFor('serve to listen', () => {
        const line = serve!.stdout().split('\n')[0]
        return line ? (JSON.parse(line) as { url: string }).url : undefined
      }, 60_000)
      const s = await scrape(other)
      expect(s.get('malfestio_metrics_from_database')).toBe(1)
      for (const name of ['malfestio_commits_verified_total', 'malfestio_rejections_total{reason="bad-signature"}', 'malfestio_resyncs_total{outcome="ok"}', 'malfestio_cursor']) {
        expect([name, s.get(name)]).toEqual([name, m.get(name)])
      }
      for (const type of Object.keys(want.byType)) expect(s.get(`malfestio_events_received_total{type="${type}"}`)).toBe(want.byType[type])
      // what only the running mirror knows is not made up by the database reader
      expect(s.has('malfestio_queue_depth')).toBe(false)
      expect(s.has('malfestio_sqlite_write_seconds_count')).toBe(false)
      expect(await (await fetch(`${other}/health`)).json()).toMatchObject({ ok: true, source: 'database', cursor: want.lastSeq })

      // both answer the same deck, fully verified
      const a = accounts[0]!
      const deck = seed.expected[a.did]!['org.stormlightlabs.malfestio.deck']![0]!
      const rkey = deck.uri.split('/').pop()
      const fromLive = await (await fetch(`${live}/decks/${a.did}/${rkey}`)).json()
      const fromOther = await (await fetch(`${other}/decks/${a.did}/${rkey}`)).json()
      expect(fromOther).toEqual(fromLive)
      expect(fromLive).toMatchObject({ uri: deck.uri, cid: deck.cid, verification: { proof: 'verified' } })
      expect(fromLive.cards.map((c: { verification: { proof: string } }) => c.verification.proof)).toEqual(['verified', 'verified'])
    } finally {
      sync.child.kill('SIGINT')
      serve?.child.kill('SIGINT')
      const [x, y] = await Promise.all([sync.done, serve?.done])
      expect(x.code, x.stderr).toBe(0)
      if (y) expect(y.code, y.stderr).toBe(0)
    }
  }, 240_000)
})
