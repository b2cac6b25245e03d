// The command line as a script or a newcomer meets it: --help names every flag each command accepts,
// mistakes are one line on stderr with exit 2 (usage) or 1 (run time) — never a stack trace — and a
// filter with a typo is refused instead of looking like an empty mirror.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { COMMANDS, main, USAGE } from '../bin/cli.ts'
import { bodySummary } from '../src/mirror/http-body.ts'
import { runCli } from './helpers/cli-process.ts'
import { tempDir } from './helpers/mirror.ts'

let tmp: ReturnType<typeof tempDir>
beforeAll(() => {
  tmp = tempDir()
})
afterAll(() => tmp?.cleanup())

/** Runs the CLI's entry point in-process and returns what it wrote. */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  try {
    const code = await main(argv)
    return { code, stdout: out.mock.calls.map((c) => String(c[0])).join(''), stderr: err.mock.calls.map((c) => String(c[0])).join('') }
  } finally {
    out.mockRestore()
    err.mockRestore()
  }
}

/** One line, naming the command, with no stack frame in it. */
function expectOneLine(stderr: string, command: string): void {
  expect(stderr.endsWith('\n'), stderr).toBe(true)
  expect(stderr.trimEnd().split('\n'), stderr).toHaveLength(1)
  expect(stderr).toMatch(new RegExp(`^malfestio-mirror ${command}: `))
  expect(stderr).not.toMatch(/\n\s+at |unexpected error/)
}

describe('--help', () => {
  it('names every flag of every command in that command’s synopsis (or the shared identity flags)', () => {
    const [commands, shared] = USAGE.split('\nShared flags (') as [string, string]
    const sharedBy = shared.slice(0, shared.indexOf(')')).split(', ')
    for (const [name, { flags }] of Object.entries(COMMANDS)) {
      // a command's synopsis: its lines up to the next command (replay has two)
      const blocks = [...commands.matchAll(new RegExp(`^  ${name} +([\\s\\S]*?)(?=^  [a-z]|^\\S|$(?![\\s\\S]))`, 'gm'))].map((m) => m[1]).join('\n')
      expect(blocks, name).not.toBe('')
      const text = sharedBy.includes(name) ? `${blocks}\n${shared}` : blocks
      for (const flag of Object.keys(flags)) {
        if (flag === 'help') continue
        expect(text, `${name} --${flag}`).toContain(`--${flag}`)
      }
    }
    // and names nothing a command does not accept (the shared flags: only on the commands listed)
    for (const name of sharedBy) expect(Object.keys(COMMANDS[name]!.flags), name).toEqual(expect.arrayContaining(['trust-plc-directory', 'identity-max-age', 'handle-resolver', 'verify-threads']))
    for (const v of ['MALFESTIO_RELAY', 'MALFESTIO_DB', 'MALFESTIO_PLC', 'MALFESTIO_COLLECTIONS', 'MALFESTIO_HANDLE_RESOLVER', 'MALFESTIO_TRUST_PLC_DIRECTORY', 'MALFESTIO_IDENTITY_MAX_AGE', 'MALFESTIO_VERIFY_THREADS', 'MALFESTIO_PORT', 'MALFESTIO_HOST']) {
      expect(USAGE).toContain(v)
    }
  })

  it('goes to stdout with exit 0 when asked for, to stderr with exit 2 when no command is given', async () => {
    for (const argv of [['--help'], ['help'], ['-h'], ['records', '--help']]) {
      const r = await cli(...argv)
      expect([r.code, r.stderr], argv.join(' ')).toEqual([0, ''])
      expect(r.stdout).toBe(USAGE)
    }
    const none = await cli()
    expect([none.code, none.stdout, none.stderr]).toEqual([2, '', USAGE])
  })
})

describe('usage errors: one line, exit 2', () => {
  it('an unknown command names the commands instead of dumping the help', async () => {
    for (const name of ['bogus', 'toString', '__proto__']) {
      const r = await cli(name)
      expect(r.code).toBe(2)
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.stderr).toContain(`unknown command ${name} (commands: sync, replay,`)
    }
  })

  it('a flag without its value, an unknown flag, a stray argument', async () => {
    const cases: [string[], string][] = [
      [['sync', '--relay', '--db', 'x.db'], '--relay needs a value'],
      [['replay', '--from'], '--from needs a value'],
      [['records', '--bogus'], 'unknown flag --bogus'],
      [['status', 'extra'], 'unexpected argument extra'],
      [['audit', 'at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/org.stormlightlabs.malfestio.deck/3k2a', 'more'], 'unexpected argument more'],
    ]
    for (const [argv, message] of cases) {
      const r = await cli(...argv)
      expect(r.code, argv.join(' ')).toBe(2)
      expectOneLine(r.stderr, argv[0]!)
      expect(r.stderr).toContain(message)
    }
  })

  it('a filter with a typo is refused before the database is opened, not answered with nothing', async () => {
    const db = join(tmp.dir, 'never.db')
    const cases: [string[], string][] = [
      [['records', '--did', 'did:plc:short'], '--did did:plc:short is not a did:plc or did:web'],
      [['records', '--did', 'alice.bsky.social'], 'is not a did:plc or did:web'],
      [['records', '--collection', 'org.stormlightlabs malfestio.deck'], 'is not an NSID'],
      [['rejections', '--did', 'did:key:zQ3sh'], 'is not a did:plc or did:web'],
      [['rejections', '--reason', 'bad-sig'], '--reason bad-sig is not a reason code (bad-frame, too-big,'],
      [['sync', '--verify-threads', 'two'], '--verify-threads must be an integer from 0 to 64, got two'],
      [['replay', '--from', '0', '--verify-threads', '-1'], '--verify-threads'],
      [['backfill', '--verify-threads', '65'], '--verify-threads must be an integer from 0 to 64, got 65'],
      [['sync', '--identity-max-age', '1d'], '--identity-max-age must be a number of hours from 0 to 8760, got 1d'],
      [['resync', '--desynchronized', '--identity-max-age', '-2'], '--identity-max-age'],
    ]
    for (const [argv, message] of cases) {
      const r = await cli(...argv, '--db', db)
      expect(r.code, argv.join(' ')).toBe(2)
      expectOneLine(r.stderr, argv[0]!)
      expect(r.stderr).toContain(message)
    }
    expect(existsSync(db)).toBe(false)
  })
})

describe('run-time errors: one line, exit 1', () => {
  it('an output path that cannot be written (capture --out, sync --capture) names the path', async () => {
    const missing = join(tmp.dir, 'no', 'such', 'dir')
    const capture = await cli('capture', '--out', join(missing, 'x.cap'), '--relay', 'ws://127.0.0.1:9')
    expect(capture.code).toBe(1)
    expectOneLine(capture.stderr, 'capture')
    expect(capture.stderr).toContain(`ENOENT: no such file or directory, open '${join(missing, 'x.cap')}'`)

    const intoDir = await cli('capture', '--out', tmp.dir, '--relay', 'ws://127.0.0.1:9', '--force')
    expect(intoDir.code).toBe(1)
    expectOneLine(intoDir.stderr, 'capture')
    expect(intoDir.stderr).toContain('EISDIR')

    const sync = await cli('sync', '--db', join(tmp.dir, 'sync.db'), '--relay', 'ws://127.0.0.1:9', '--connect-attempts', '1', '--capture', join(missing, 'run.cap'))
    expect(sync.code).toBe(1)
    expect(sync.stderr.trimEnd().split('\n').at(-1)).toBe(`malfestio-mirror sync: ENOENT: no such file or directory, open '${join(missing, 'run.cap')}'`)
    expect(sync.stderr).not.toMatch(/\n\s+at /)
  })

  it('an upstream answering with an HTML error page is quoted on one line', async () => {
    const page = '<!DOCTYPE html>\n<html lang="en">\n<head><title>Error</title></head>\n<body>\n<pre>Cannot GET /xrpc/com.atproto.sync.listReposByCollection</pre>\n</body>\n</html>\n'
    expect(bodySummary(page)).toBe('Error Cannot GET /xrpc/com.atproto.sync.listReposByCollection')
    expect(bodySummary('x'.repeat(500))).toHaveLength(200)
    const server = http.createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end(page))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const r = await cli('backfill', '--relay', url, '--db', join(tmp.dir, 'backfill.db'))
      expect(r.code).toBe(1)
      const last = r.stderr.trimEnd().split('\n').at(-1)!
      expect(last).toMatch(/^malfestio-mirror backfill: .* is not a PDS and its listReposByCollection failed for org\.stormlightlabs\.malfestio\.\S+ \(HTTP 404 Error Cannot GET \/xrpc\/com\.atproto\.sync\.listReposByCollection\): point --relay at a relay/)
      expect(r.stderr).not.toContain('<')
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

/** A `node` on PATH older than the CLI needs (the machine's own, where the project brings Node 24), if any. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || dir.includes('node_modules')) continue
    const bin = join(dir, 'node')
    if (!existsSync(bin)) continue
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^v/, '').split('.').map(Number)
    if (v.length === 3 && (v[0]! < 22 || (v[0] === 22 && v[1]! < 18))) return bin
  }
  return undefined
}

describe('the entry point under an older Node', () => {
  const old = olderNode()
  it.skipIf(!old)('says which Node it needs in one line, exit 1, instead of failing on the TypeScript import', () => {
    const r = spawnSync(old!, ['bin/malfestio-mirror.js', 'status'], { encoding: 'utf8' })
    expect(r.status).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^malfestio-mirror: needs Node >= 22\.18, this is v\d+\.\d+\.\d+ \(.*\); run it through npx \/ npm run, or install Node 24\n$/)
  })

  it('under this Node it runs', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(USAGE)
  })
})
