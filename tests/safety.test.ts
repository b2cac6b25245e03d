// Safe by default: the database (and SQLite's -wal/-shm files) is created owner-only; URLs given on
// the command line are validated before anything connects; strings from the stream reach SQLite only
// as bound values and the file system never (an SQL fragment and a path as DID, #info name and
// record content are stored verbatim as data, no table is touched, no file appears).
import { spawn } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../bin/cli.ts'
import { encode } from '@atcute/cbor'
import { encodeMessageFrame } from '../src/firehose/wire.ts'
import { runMirror } from '../src/mirror/run.ts'
import { DEFAULTS } from '../src/mirror/config.ts'
import { openDb } from '../src/store/db.ts'
import { listRecords } from '../src/store/records.ts'
import { readStatus } from '../src/store/status.ts'
import { runCli } from './helpers/cli-process.ts'
import { frameOf, startFakeRelay } from './helpers/fake-relay.ts'
import { startForgedAuthor, type ForgedAuthor } from './helpers/forge.ts'
import { tempDir } from './helpers/mirror.ts'

let tmp: ReturnType<typeof tempDir>
let author: ForgedAuthor

beforeAll(async () => {
  tmp = tempDir()
  author = await startForgedAuthor()
})

afterAll(async () => {
  await author?.close()
  tmp?.cleanup()
})

const mode = (p: string) => statSync(p).mode & 0o777

describe('safe by default', () => {
  it('creates the database, its WAL and shared-memory files owner-only (0600), whatever the umask', () => {
    const old = process.umask(0o022)
    try {
      const path = `${tmp.dir}/perm.db`
      const db = openDb(path)
      db.prepare("INSERT INTO counters (name, value) VALUES ('x', 1)").run() // a write: -wal and -shm exist now
      for (const p of [path, `${path}-wal`, `${path}-shm`]) {
        expect(existsSync(p), p).toBe(true)
        expect(mode(p).toString(8), p).toBe('600')
      }
      db.close()
    } finally {
      process.umask(old)
    }
  })

  it('processes opening a new database at the same moment all succeed (`status` while `sync` starts)', async () => {
    const path = `${tmp.dir}/race.db`
    // every process loads the code first, then they open 15 new databases, each at an agreed instant
    const at = Date.now() + 4000
    const script = `import { openDb } from ${JSON.stringify(new URL('../src/store/db.ts', import.meta.url).pathname)}
      let out = 'ok'
      for (let k = 0; k < 15; k++) {
        while (Date.now() < ${at} + k * 200);
        try { openDb(process.argv[1] + k).close() } catch (e) { out = e.message }
      }
      process.stdout.write(out)`
    const outs = await Promise.all(
      Array.from({ length: 6 }, () => new Promise<string>((resolve) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', script, path])
        let out = ''
        p.stdout.on('data', (d) => (out += d))
        p.on('close', () => resolve(out))
      })),
    )
    expect(outs).toEqual(Array(6).fill('ok'))
    expect(mode(`${path}0`).toString(8)).toBe('600')
  })

  it('refuses URLs that are not http(s)/ws(s), carry credentials, a query or a fragment — before connecting', async () => {
    const db = `${tmp.dir}/never.db`
    const cases: [string[], RegExp][] = [
      [['--relay', 'file:///etc/passwd'], /--relay: file:\/\/\/etc\/passwd must use ws or wss or http or https/],
      [['--relay', 'wss://user:secret@relay.example'], /must not carry a query, fragment or credentials/],
      [['--relay', 'wss://relay.example/?cursor=5'], /must not carry a query/],
      [['--plc', 'ws://plc.example'], /--plc: .* must use http or https/],
      [['--plc', 'not a url'], /--plc: not a url is not a URL/],
      [['--handle-resolver', 'javascript:alert(1)'], /--handle-resolver: .* must use http or https/],
    ]
    // the CLI's own entry point, in-process (one real child process below shows the same)
    for (const [flags, message] of cases) {
      const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
      let code: number
      let written: string
      try {
        code = await main(['replay', '--from', '0', '--db', db, ...flags])
      } finally {
        written = err.mock.calls.map((c) => String(c[0])).join('')
        err.mockRestore()
      }
      expect(code, flags.join(' ')).toBe(2)
      expect(written).toMatch(message)
    }
    const r = await runCli(['sync', '--db', db, '--relay', 'wss://user:secret@relay.example'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/must not carry a query, fragment or credentials/)
    expect(existsSync(db)).toBe(false) // nothing was opened
  })

  it('strings from the stream are data: an SQL fragment and a path land verbatim, nothing else happens', async () => {
    const sql = "x'); DROP TABLE records; --"
    const path = `${tmp.dir}/pwned`
    const NS = 'org.stormlightlabs.malfestio.'
    const commit = await author.genesis(1, [
      { path: `${NS}deck/3ccccccccccc2`, bytes: encode({ $type: `${NS}deck`, title: sql, description: path, createdAt: new Date().toISOString() }) },
    ])
    const frames = [
      frameOf(commit),
      encodeMessageFrame('#info', { name: sql, message: path }),
      encodeMessageFrame('#identity', { seq: 2, did: `did:plc:${sql}`, time: new Date().toISOString() }),
      encodeMessageFrame('#account', { seq: 3, did: path, active: false, status: sql, time: new Date().toISOString() }),
      encodeMessageFrame(sql, { seq: 4 }),
    ]
    const relay = await startFakeRelay(frames)
    const dbPath = `${tmp.dir}/data.db`
    try {
      const result = await runMirror({ ...DEFAULTS, service: relay.url, plcUrl: 'http://127.0.0.1:9', dbPath, cursor: 0, idleMs: 800, batchMs: 50 })
      expect(result.stoppedBy).toBe('idle')
    } finally {
      await relay.close()
    }
    expect(existsSync(path)).toBe(false)
    const db = openDb(dbPath)
    try {
      const [rec] = listRecords(db, {})
      expect(rec!.value).toMatchObject({ title: sql, description: path })
      const status = readStatus(db)
      expect(status.records.total).toBe(1)
      expect(status.info[0]).toMatchObject({ name: sql, message: path })
      expect(status.counters['info.other']).toBe(1) // counter names are not the stream's to choose
      expect(Object.keys(status.counters).some((k) => k.includes('DROP'))).toBe(false)
    } finally {
      db.close()
    }
  })
})
