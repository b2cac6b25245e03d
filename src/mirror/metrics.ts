/**
 * Prometheus metrics (prom-client). One mapping from the mirror's counter names (the same names as
 * the `counters` table: `events.commit`, `rejected.bad-signature`, `resync.ok`, …) to metrics, used
 * two ways:
 * - live (`sync --serve`): counters move with the mirror's hooks, on top of the all-time sums the
 *   database held at start; gauges read the running mirror (cursor, lag, queue depth, DID cache) and
 *   SQLite batch latency is a histogram;
 * - from the database (`serve` as a separate process): each scrape reads the `counters` and `cursor`
 *   tables. What only a running process knows (queue depth, DID resolver cache, write latency,
 *   receive lag) is not exported there.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { readCounters } from '../store/counters.ts'
import { listCursors } from '../store/cursor.ts'
import type { Db } from '../store/db.ts'
import type { Mirror, MirrorHooks } from './mirror.ts'
import type { RunView } from './run.ts'

type CounterKey = 'events' | 'errorFrames' | 'verified' | 'rejections' | 'resyncAttempts' | 'resyncs' | 'other'

/** Where a mirror counter goes: which metric, with which labels. */
export function metricOf(name: string): { key: CounterKey; labels: Record<string, string> } {
  const dot = name.indexOf('.')
  const head = dot < 0 ? name : name.slice(0, dot)
  const tail = dot < 0 ? '' : name.slice(dot + 1)
  if (head === 'events') return { key: 'events', labels: { type: tail } }
  if (name === 'frames.unknown') return { key: 'events', labels: { type: 'unknown' } }
  if (head === 'errors') return { key: 'errorFrames', labels: { error: tail } }
  if (name === 'commits.verified') return { key: 'verified', labels: {} }
  if (head === 'rejected') return { key: 'rejections', labels: { reason: tail } }
  if (name === 'resync.attempts') return { key: 'resyncAttempts', labels: {} }
  if (head === 'resync') return { key: 'resyncs', labels: { outcome: tail } }
  return { key: 'other', labels: { name } }
}

function createCounters(registry: Registry): Record<CounterKey, Counter> {
  const c = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] })
  return {
    events: c('malfestio_events_received_total', 'Stream messages received, by type (commit, identity, account, sync, info, unknown)', ['type']),
    errorFrames: c('malfestio_error_frames_total', 'Error frames the upstream sent, by error name', ['error']),
    verified: c('malfestio_commits_verified_total', 'Commits proven (CIDs, signature, MST, inversion)'),
    rejections: c('malfestio_rejections_total', 'Changes refused, by reason code (src/verify/reasons.ts)', ['reason']),
    resyncAttempts: c('malfestio_resync_attempts_total', 'Resyncs started (getRepo + full verification)'),
    resyncs: c('malfestio_resyncs_total', 'Resync outcomes (ok, failed, repo-inactive, skipped-inactive, reactivated)', ['outcome']),
    other: c('malfestio_mirror_events_total', 'Every other mirror counter, by its name in the counters table (stale, duplicates, passthrough, …)', ['name']),
  }
}

function addAll(counters: Record<CounterKey, Counter>, sums: Record<string, number>): void {
  for (const [name, n] of Object.entries(sums)) {
    if (n <= 0) continue
    const { key, labels } = metricOf(name)
    counters[key].inc(labels, n)
  }
}

/** Gauges both modes can fill from the database: cursor, its event time and lag, repos by state. */
function storeGauges(registry: Registry, db: () => Db | undefined): void {
  const cursorRow = () => {
    const d = db()
    if (!d) return undefined
    return listCursors(d).reduce<ReturnType<typeof listCursors>[number] | undefined>((a, b) => (!a || b.updatedAt > a.updatedAt ? b : a), undefined)
  }
  new Gauge({
    name: 'malfestio_cursor',
    help: 'Durable stream cursor: every event at or below it is applied and written',
    registers: [registry],
    collect() {
      const c = cursorRow()
      if (c) this.set(c.seq)
    },
  })
  new Gauge({
    name: 'malfestio_cursor_event_timestamp_seconds',
    help: "Upstream time of the event at the cursor (unix seconds)",
    registers: [registry],
    collect() {
      const t = cursorRow()?.eventTime
      if (t) this.set(Date.parse(t) / 1000)
    },
  })
  new Gauge({
    name: 'malfestio_lag_seconds',
    help: 'Seconds behind the stream: now minus the upstream time of the event at the cursor',
    registers: [registry],
    collect() {
      const t = cursorRow()?.eventTime
      if (t) this.set(Math.max(0, (Date.now() - Date.parse(t)) / 1000))
    },
  })
  new Gauge({
    name: 'malfestio_repos',
    help: 'Repos in the mirror, by sync state (synchronized, desynchronized, resyncing)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const d = db()
      if (!d) return
      this.reset()
      for (const r of d.prepare('SELECT state, COUNT(*) AS n FROM repos GROUP BY state').all() as { state: string; n: number }[]) this.set({ state: r.state }, r.n)
    },
  })
  new Gauge({
    name: 'malfestio_repos_hidden',
    help: 'Repos whose account is not active (records hidden), by status',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const d = db()
      if (!d) return
      this.reset()
      for (const r of d.prepare(`SELECT COALESCE(status, 'inactive') AS status, COUNT(*) AS n FROM repos WHERE active = 0 GROUP BY 1`).all() as { status: string; n: number }[]) {
        this.set({ status: r.status }, r.n)
      }
    },
  })
}

export interface LiveMetrics {
  registry: Registry
  /** pass to runMirror: counters and write latency move with the mirror */
  hooks: MirrorHooks
  /**
   * Connects the gauges to the running mirror, and adds the database's all-time counter sums (read
   * through `db`, the API's connection) under what this run counts.
   */
  attach(mirror: Mirror, run: RunView, db: Db): void
  text(): Promise<{ contentType: string; body: string }>
}

/** Metrics of a mirror running in this process (`sync --serve`). */
export function createLiveMetrics(): LiveMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const counters = createCounters(registry)
  const writeSeconds = new Histogram({
    name: 'malfestio_sqlite_write_seconds',
    help: 'Duration of one batch transaction (records, versions, blocks, cursor)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const writes = new Counter({ name: 'malfestio_sqlite_writes_total', help: 'Writes (events applied) committed in batches', registers: [registry] })
  let mirror: Mirror | undefined
  let run: RunView | undefined
  let db: Db | undefined
  storeGauges(registry, () => db)
  const gauge = (name: string, help: string, value: () => number | null | undefined) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = value()
        if (v !== null && v !== undefined) this.set(v)
      },
    })
  gauge('malfestio_last_seq', 'Highest seq received from the upstream', () => mirror?.stats().lastSeq)
  gauge('malfestio_receive_lag_seconds', 'Now minus the upstream time of the newest event received', () => {
    const t = run?.clock.lastEventTime()
    return t == null ? null : Math.max(0, (Date.now() - t) / 1000)
  })
  gauge('malfestio_queue_depth', 'Events in flight: queued on a repo or being verified', () => mirror?.stats().inFlight)
  gauge('malfestio_connected', '1 while the upstream connection is open', () => (run ? (run.connection().state === 'connected' ? 1 : 0) : null))
  // the resolver keeps its own totals: export them as counters, re-read at each scrape
  const fromResolver = (name: string, help: string, pick: (s: ReturnType<Mirror['identityStats']>) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        if (!mirror) return
        this.reset()
        this.inc(pick(mirror.identityStats()))
      },
    })
  fromResolver('malfestio_did_resolutions_total', 'DID resolutions asked of the resolver (cache or network)', (s) => s.calls)
  fromResolver('malfestio_did_resolution_cache_hits_total', 'DID resolutions answered from the cache', (s) => s.cacheHits)
  fromResolver('malfestio_did_resolution_fetches_total', 'DID documents fetched from PLC / did:web', (s) => s.fetches)
  fromResolver('malfestio_did_resolution_from_store_total', 'DIDs met since the start whose identity, proven from a verified PLC log, came from the database', (s) => s.primed)
  return {
    registry,
    hooks: {
      onCount(name, n) {
        if (n <= 0) return
        const { key, labels } = metricOf(name)
        counters[key].inc(labels, n)
      },
      onFlush(ms, n) {
        writeSeconds.observe(ms / 1000)
        writes.inc(n)
      },
    },
    attach(m, r, d) {
      mirror = m
      run = r
      db = d
      addAll(counters, readCounters(d))
    },
    text: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  }
}

/** Metrics read from the database at each scrape (`serve` beside a `sync` in another process). */
export function createStoreMetrics(db: Db): { registry: Registry; text(): Promise<{ contentType: string; body: string }> } {
  const registry = new Registry()
  let counters: Record<CounterKey, Counter> | undefined
  // registered first, so its collect (one read of the counters table per scrape) runs before the counters are read
  new Gauge({
    name: 'malfestio_metrics_from_database',
    help: '1: these metrics come from the database (a separate serve process), not from a running mirror',
    registers: [registry],
    collect() {
      this.set(1)
      if (!counters) return
      for (const c of Object.values(counters)) c.reset()
      addAll(counters, readCounters(db))
    },
  })
  counters = createCounters(registry)
  storeGauges(registry, () => db)
  collectDefaultMetrics({ register: registry })
  return { registry, text: async () => ({ contentType: registry.contentType, body: await registry.metrics() }) }
}
