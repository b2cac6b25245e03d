/**
 * `npm run demo`: the whole job on embedded defaults. Starts a local PDS + PLC (@atproto/dev-env),
 * writes sample Malfestio decks, cards and notes (plus records the mirror must ignore), mirrors the
 * stream with full verification into SQLite, checks the mirror against the PDS, and prints `status`.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { readStatus } from '../src/store/status.ts'
import { createAccounts, seedMalfestio, startDevnet } from '../tests/helpers/devnet.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot } from '../tests/helpers/mirror.ts'
import { formatStatus } from './commands/read.ts'

const say = (s: string) => process.stdout.write(s + '\n')

const dir = resolve('.tmp')
mkdirSync(dir, { recursive: true })
const dbPath = resolve(dir, 'demo.db')
for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true })

say('1/4 starting a local PDS and PLC directory (@atproto/dev-env)…')
const net = await startDevnet()
let ok = false
try {
  say(`    PDS ${net.pdsUrl}   PLC ${net.plcUrl}`)
  say('2/4 creating 3 accounts and writing decks, cards, notes, collections, sources and comments…')
  const accounts = await createAccounts(net, 3, 'demo')
  const seed = await seedMalfestio(net, accounts)
  say(`    ${seed.created} creates, ${seed.updated} updates, ${seed.deleted} deletes, ${seed.other.length} records in other collections`)

  say(`3/4 mirroring the firehose from seq 0 with full verification into ${dbPath}…`)
  const started = Date.now()
  const result = await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 1500 }), {
    onProgress: (p) => {
      if (p.done) say(`    ${p.stats.received} events, ${p.stats.verified} commits verified, ${p.stats.rejected} rejected, ${p.stats.resyncs} resyncs`)
    },
  })
  const secs = (Date.now() - started - 1500) / 1000
  say(`    caught up in ${secs.toFixed(2)} s (then ${1.5} s of idle to confirm the end of the stream)`)

  say('4/4 comparing the mirror with what the PDS serves (com.atproto.repo.listRecords)…')
  const expected = await pdsSnapshot(net, accounts.map((a) => a.did))
  const actual = mirrorSnapshot(dbPath)
  ok = JSON.stringify(sorted(expected)) === JSON.stringify(sorted(actual))
  say(`    ${Object.keys(actual).length} records in the mirror, ${Object.keys(expected).length} on the PDS: ${ok ? 'identical (uri, cid, value)' : 'DIFFERENT'}`)
  if (result.stats.rejected) ok = false

  const db = openDb(dbPath)
  say('\n' + formatStatus(readStatus(db)))
  db.close()
  say(`\nInspect it: npx malfestio-mirror records --db ${dbPath} --json | head`)
} finally {
  await net.close()
}
process.exitCode = ok ? 0 : 1

function sorted(o: Record<string, unknown>): [string, unknown][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))
}
