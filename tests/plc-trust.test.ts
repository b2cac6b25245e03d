// Trusting keys, not the directory: a PLC directory that names an attacker's key for an account cannot
// get a commit signed by that key into the mirror (plc-doc-mismatch), unless the mirror is told to
// trust the directory (--trust-plc-directory), which is exactly the forgery the default prevents.
// Also: a doctored operation log, a tombstoned or unknown did:plc, and did:web failures are refused with
// their own reasons, never a crash.
import { execFile } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Secp256k1Keypair } from '@atproto/crypto'
import type { CommitEvent } from '../src/firehose/events.ts'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { getIdentity } from '../src/store/identities.ts'
import { listRejections } from '../src/store/rejections.ts'
import { readStatus } from '../src/store/status.ts'
import {
  createAccounts, currentSeq, MALFESTIO_NSIDS, plcSigningKey, sampleMalfestio, seedMalfestio, startDevnet, tombstoneDid, writeRecord,
  type Devnet, type TestAccount,
} from './helpers/devnet.ts'
import { captureFrames, eventOf, frameOf, startFakeRelay } from './helpers/fake-relay.ts'
import { forgeCommit } from './helpers/forge-commit.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'
import { startPlcProxy, type PlcProxy } from './helpers/plc-proxy.ts'

const exec = promisify(execFile)
const cli = (...args: string[]) => exec(process.execPath, ['bin/malfestio-mirror.js', ...args], { env: { ...process.env } })

let net: Devnet
let proxy: PlcProxy
let tmp: ReturnType<typeof tempDir>
let accounts: TestAccount[]

beforeAll(async () => {
  net = await startDevnet()
  proxy = await startPlcProxy(net.plcUrl)
  tmp = tempDir()
  accounts = await createAccounts(net, 2, 'trust')
  await seedMalfestio(net, accounts)
}, 120_000)

afterAll(async () => {
  await proxy?.close()
  await net?.close()
  tmp?.cleanup()
})

const status = (dbPath: string) => {
  const db = openDb(dbPath, { mustExist: true })
  try {
    return { status: readStatus(db), rejections: listRejections(db) }
  } finally {
    db.close()
  }
}

describe('a PLC directory that lies about an account’s key', () => {
  it('default: plc-doc-mismatch and the forged record stays out; --trust-plc-directory: the forgery gets in', async () => {
    const [victim] = accounts as [TestAccount]
    const attacker = await Secp256k1Keypair.create()
    const verifiedDb = `${tmp.dir}/verified.db`
    const trustingDb = `${tmp.dir}/trusting.db`

    // both mirrors follow the honest history through the (for now honest) directory
    await runMirror(mirrorConfig(net, verifiedDb, { cursor: 0, idleMs: 800, plcUrl: proxy.url }))
    await runMirror(mirrorConfig(net, trustingDb, { cursor: 0, idleMs: 800, plcUrl: proxy.url, trustPlcDirectory: true }))
    const honest = await pdsSnapshot(net, accounts.map((a) => a.did))
    expect(mirrorSnapshot(verifiedDb)).toEqual(honest)
    expect(mirrorSnapshot(trustingDb)).toEqual(honest)
    expect(status(verifiedDb).rejections).toEqual([])
    const before = status(verifiedDb).status.identity
    expect(before).toMatchObject({ mode: 'verify-plc-log', bySource: { 'plc-log': 2 }, docMismatches: 0 })

    // now the directory names the attacker's key, and a relay serves a commit signed by it
    proxy.lieAboutKey(victim.did, attacker.did())
    const seq = await currentSeq(net)
    const forged = await forgeCommit(net, victim.did, {
      collection: MALFESTIO_NSIDS.deck,
      record: sampleMalfestio.deck({ title: 'Forged deck' }),
      signer: attacker,
      seq: seq + 1,
    })
    const relay = await startFakeRelay([frameOf(forged.event)])
    try {
      await runMirror(mirrorConfig(net, verifiedDb, { service: relay.url, cursor: seq, idleMs: 800, plcUrl: proxy.url }))
      const v = status(verifiedDb)
      expect(v.rejections.map((r) => [r.seq, r.did, r.reason])).toEqual([[seq + 1, victim.did, 'plc-doc-mismatch']])
      expect(v.rejections[0]!.message).toContain(attacker.did())
      expect(v.status.rejections.byReason).toEqual({ 'plc-doc-mismatch': 1 })
      expect(v.status.identity.docMismatches).toBe(1)
      expect(mirrorSnapshot(verifiedDb)[forged.uri]).toBeUndefined()
      expect(mirrorSnapshot(verifiedDb)).toEqual(honest)
      const db = openDb(verifiedDb)
      expect(getIdentity(db, victim.did)).toMatchObject({ signingKey: await plcSigningKey(net, victim.did), keySource: 'plc-log' })
      expect(getIdentity(db, victim.did)!.docMismatch).toContain(attacker.did())
      db.close()

      // the same stream with --trust-plc-directory, through the CLI: the forgery is accepted as the victim's
      const out = await cli('replay', '--from', String(seq), '--relay', relay.url, '--plc', proxy.url, '--db', trustingDb,
        '--idle-ms', '800', '--handle-resolver', net.pdsUrl, '--trust-plc-directory', '--json')
      expect(JSON.parse(out.stdout.trim().split('\n').at(-1)!)).toMatchObject({ verified: 1, rejected: 0 })
      const t = status(trustingDb)
      expect(t.rejections).toEqual([])
      expect(mirrorSnapshot(trustingDb)[forged.uri]).toMatchObject({ cid: forged.cid, value: { title: 'Forged deck' } })
      const json = JSON.parse((await cli('status', '--db', trustingDb, '--json')).stdout)
      expect(json.identity).toMatchObject({ mode: 'trust-plc-directory', bySource: { 'plc-directory': 2 } })
      expect((await cli('status', '--db', trustingDb)).stdout).toContain('--trust-plc-directory: logs NOT verified')
      expect(JSON.parse((await cli('status', '--db', verifiedDb, '--json')).stdout).identity.mode).toBe('verify-plc-log')
    } finally {
      await relay.close()
      proxy.reset(victim.did)
    }
    // four mirror runs and five CLI processes: on a loaded 2-core machine this takes most of a minute
  }, 180_000)

  it('a doctored operation log is refused (plc-log-invalid) and none of the account’s commits go in', async () => {
    const [, other] = accounts as [TestAccount, TestAccount]
    proxy.editLog(other.did, (log) => {
      const sig = Buffer.from(log[0].operation.sig, 'base64url')
      sig[5]! ^= 1
      log[0].operation.sig = sig.toString('base64url')
      return log
    })
    const dbPath = `${tmp.dir}/doctored.db`
    try {
      await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 800, plcUrl: proxy.url }))
    } finally {
      proxy.reset(other.did)
    }
    const { rejections } = status(dbPath)
    const mine = rejections.filter((r) => r.did === other.did)
    expect(mine.length).toBeGreaterThan(0)
    expect(new Set(mine.map((r) => r.reason))).toEqual(new Set(['plc-log-invalid']))
    expect(mine[0]!.message).toMatch(/operation log refused: (cid-mismatch|genesis-hash|bad-signature)/)
    expect(rejections.filter((r) => r.did !== other.did)).toEqual([])
    expect(Object.keys(mirrorSnapshot(dbPath)).filter((u) => u.includes(other.did))).toEqual([])
  })
})

describe('identities that cannot sign: clear reasons, never a crash', () => {
  let stub: http.Server
  let stubPort: number
  beforeAll(async () => {
    stub = http.createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('no such user')
    })
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r))
    stubPort = (stub.address() as AddressInfo).port
  })
  afterAll(async () => {
    stub.closeAllConnections()
    await new Promise<void>((r) => stub.close(() => r()))
  })

  it('tombstoned and unknown did:plc, missing and path-based did:web', async () => {
    const [gone] = await createAccounts(net, 1, 'tomb')
    const from = await currentSeq(net)
    await writeRecord(net, gone!.did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'before the tombstone' }))
    await tombstoneDid(net, gone!.did)
    const frames = await captureFrames(net.subscribeUrl, from)
    const commit = frames.map(eventOf).find((e): e is CommitEvent => e.type === 'commit' && e.repo === gone!.did)!
    expect(commit).toBeDefined()
    // the same (honest) commit claimed for identities that cannot be resolved
    const as = (repo: string, seq: number): Uint8Array => frameOf({ ...commit, repo, seq })
    const unknownPlc = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
    const missingWeb = `did:web:localhost%3A${stubPort}`
    const pathWeb = 'did:web:example.com:users:alice'
    const base = (await currentSeq(net)) + 100
    const relay = await startFakeRelay([as(gone!.did, base + 1), as(unknownPlc, base + 2), as(missingWeb, base + 3), as(pathWeb, base + 4)])
    try {
      for (const trustPlcDirectory of [false, true]) {
        const dbPath = `${tmp.dir}/unresolved-${trustPlcDirectory}.db`
        await runMirror(mirrorConfig(net, dbPath, { service: relay.url, cursor: base, idleMs: 800, trustPlcDirectory }))
        const { rejections } = status(dbPath)
        expect(rejections.map((r) => [r.seq, r.reason])).toEqual([
          [base + 1, 'did-tombstoned'],
          [base + 2, 'identity-unresolved'],
          [base + 3, 'identity-unresolved'],
          [base + 4, 'did-web-unsupported'],
        ])
        const msg = Object.fromEntries(rejections.map((r) => [r.seq, r.message]))
        if (!trustPlcDirectory) expect(msg[base + 1]).toMatch(/tombstoned by PLC operation \w+ at .* \(verified log\)/)
        expect(msg[base + 2]).toContain('did-not-found')
        expect(msg[base + 3]).toMatch(/did-not-found: did:web:localhost%3A\d+: http:\/\/localhost:\d+ answered 404/)
        expect(msg[base + 4]).toContain('path-based did:web')
        expect(mirrorSnapshot(dbPath, { includeHidden: true })).toEqual({})
      }
    } finally {
      await relay.close()
    }
  })
})

describe('--trust-plc-directory from the environment', () => {
  it('MALFESTIO_TRUST_PLC_DIRECTORY turns it on, a flag wins, a bad value is a usage error', async () => {
    const { networkConfig, UsageError } = await import('../bin/args.ts')
    const prev = process.env.MALFESTIO_TRUST_PLC_DIRECTORY
    try {
      delete process.env.MALFESTIO_TRUST_PLC_DIRECTORY
      expect(networkConfig({}).trustPlcDirectory).toBe(false)
      process.env.MALFESTIO_TRUST_PLC_DIRECTORY = 'true'
      expect(networkConfig({}).trustPlcDirectory).toBe(true)
      expect(networkConfig({ 'trust-plc-directory': false }).trustPlcDirectory).toBe(false)
      process.env.MALFESTIO_TRUST_PLC_DIRECTORY = '0'
      expect(networkConfig({}).trustPlcDirectory).toBe(false)
      expect(networkConfig({ 'trust-plc-directory': true }).trustPlcDirectory).toBe(true)
      process.env.MALFESTIO_TRUST_PLC_DIRECTORY = 'maybe'
      expect(() => networkConfig({})).toThrow(UsageError)
    } finally {
      if (prev === undefined) delete process.env.MALFESTIO_TRUST_PLC_DIRECTORY
      else process.env.MALFESTIO_TRUST_PLC_DIRECTORY = prev
    }
  })
})
