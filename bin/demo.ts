/**
 * `npm run demo`: the whole job on embedded defaults. Starts a local PDS + PLC (@atproto/dev-env),
 * writes sample Malfestio decks, cards and notes (plus records the mirror must ignore), mirrors the
 * stream with full verification into SQLite, checks the mirror against the PDS, prints `status`, and
 * serves the mirror over HTTP (the read API) to open a deck with its cards.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { readStatus } from '../src/store/status.ts'
import { createAccounts, seedMalfestio, startDevnet } from '../tests/helpers/devnet.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot } from '../tests/helpers/mirror.ts'
import { startApiServer } from '../src/api/server.ts'
import { deckView } from '../src/mirror/deck-view.ts'
import { createStoreMetrics } from '../src/mirror/metrics.ts'
import { formatStatus } from './commands/read.ts'

const say = (s: string) => process.stdout.write(s + '\n')

const dir = resolve('.tmp')
mkdirSync(dir, { recursive: true })
const dbPath = resolve(dir, 'demo.db')
for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true })

say('1/5 starting a local PDS and PLC directory (@atproto/dev-env)…')
const net = await startDevnet()
let ok = false
try {
  say(`    PDS ${net.pdsUrl}   PLC ${net.plcUrl}`)
  say('2/5 creating 3 accounts and writing decks, cards, notes, collections, sources and comments…')
  const accounts = await createAccounts(net, 3, 'demo')
  const seed = await seedMalfestio(net, accounts)
  say(`    ${seed.created} creates, ${seed.updated} updates, ${seed.deleted} deletes, ${seed.other.length} records in other collections`)

  say(`3/5 mirroring the firehose from seq 0 with full verification into ${dbPath}…`)
  const started = Date.now()
  const result = await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 1500 }), {
    onProgress: (p) => {
      if (p.done) say(`    ${p.stats.received} events, ${p.stats.verified} commits verified, ${p.stats.rejected} rejected, ${p.stats.resyncs} resyncs`)
    },
  })
  const secs = (Date.now() - started - 1500) / 1000
  say(`    caught up in ${secs.toFixed(2)} s (then ${1.5} s of idle to confirm the end of the stream)`)

  say('4/5 comparing the mirror with what the PDS serves (com.atproto.repo.listRecords)…')
  const expected = await pdsSnapshot(net, accounts.map((a) => a.did))
  const actual = mirrorSnapshot(dbPath)
  ok = JSON.stringify(sorted(expected)) === JSON.stringify(sorted(actual))
  say(`    ${Object.keys(actual).length} records in the mirror, ${Object.keys(expected).length} on the PDS: ${ok ? 'identical (uri, cid, value)' : 'DIFFERENT'}`)
  if (result.stats.rejected) ok = false

  const db = openDb(dbPath)
  say('\n' + formatStatus(readStatus(db)))
  db.close()

  say('\n5/5 serving the mirror over HTTP (what `sync --serve` and `serve` run) and opening a deck…')
  const ro = openDb(dbPath, { readonly: true })
  const api = await startApiServer({ db: ro, port: 0, metrics: createStoreMetrics(ro).text, deckView })
  try {
    const health = await (await fetch(`${api.url}/health`)).json()
    say(`    GET /health → ok ${health.ok}, cursor ${health.cursor}, ${health.lagSeconds} s behind the stream`)
    const a = accounts[0]!
    const listed = await (await fetch(`${api.url}/xrpc/com.atproto.repo.listRecords?repo=${a.did}&collection=org.stormlightlabs.malfestio.deck`)).json()
    const rkey = (listed.records[0].uri as string).split('/').pop()
    const deck = await (await fetch(`${api.url}/decks/${a.did}/${rkey}`)).json()
    const proofs = [deck, ...deck.cards].map((r: { verification?: { proof: string } }) => r.verification?.proof)
    say(`    GET /decks/${a.did}/${rkey} → "${deck.value.title}", ${deck.cards.length} cards, proofs: ${proofs.join(', ')}`)
    if (proofs.some((p) => p !== 'verified')) ok = false
    const metrics = await (await fetch(`${api.url}/metrics`)).text()
    say(`    GET /metrics → ${metrics.split('\n').filter((l) => l.startsWith('malfestio_')).length} malfestio_* samples (Prometheus text)`)
  } finally {
    await api.close()
    ro.close()
  }
  say(`\nInspect it: npx malfestio-mirror records --db ${dbPath} --json | head`)
  say(`Serve it:   npx malfestio-mirror serve --db ${dbPath} --port 2585   (then curl localhost:2585/health)`)
} finally {
  await net.close()
}
process.exitCode = ok ? 0 : 1

function sorted(o: Record<string, unknown>): [string, unknown][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))
}
