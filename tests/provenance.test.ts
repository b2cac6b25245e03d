// Provenance on a real dev-env PDS + PLC: a deck edited three times with five cards (one deleted, one
// listed but never written, one written by another account claiming the deck), a key rotation in
// between, an account deleted and another deactivated. `audit` must show all of it, `export-proof`
// must give CARs that @atproto/repo's own verifier accepts with the DID's key, and `verify` must
// name every tampered row.
import { execFile } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyProofs, verifyRecords } from '@atproto/repo'
import { parseCid } from '@atproto/lex-data'
import Database from 'better-sqlite3'
import { auditRecord, exportRecordProof, type AuditReport } from '../src/mirror/provenance.ts'
import { verifyStore } from '../src/mirror/verify-store.ts'
import { cidBinary } from '../src/store/blocks.ts'
import { openDb } from '../src/store/db.ts'
import { buildRecordProofCar } from '../src/store/proofs.ts'
import { AtUriError, parseRecordUri } from '../src/verify/at-uri.ts'
import {
  createAccounts,
  deactivate,
  deleteAccount,
  deleteRecord,
  latestCommit,
  MALFESTIO_NSIDS as N,
  plcSigningKey,
  rotateSigningKey,
  sampleMalfestio,
  startDevnet,
  updateRecord,
  writeRecord,
  xrpcQuery,
  type Devnet,
  type WriteResult,
} from './helpers/devnet.ts'
import { startLiveMirror } from './helpers/live.ts'
import { mirrorConfig, tempDir } from './helpers/mirror.ts'
import { runMirror } from '../src/mirror/run.ts'

const exec = promisify(execFile)
const CLI = new URL('../bin/malfestio-mirror.js', import.meta.url).pathname
const ROOT = new URL('..', import.meta.url).pathname

/** Runs the CLI under this Node (the one vitest runs on); never rejects, returns code and output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { cwd: ROOT, maxBuffer: 64 << 20 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let dbPath: string
const FIXED = '2025-01-01T00:00:00.000Z'

// what the scenario wrote, for the assertions
let A: string, B: string, C: string
let oldKey: string, newKey: string
let deck: WriteResult
const deckEdits: WriteResult[] = []
let cards: WriteResult[]
let foreign: WriteResult
let article: WriteResult
let cArticle: WriteResult
let bogus: string
let bKey: string
let bHead: string

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir('mm-prov-')
  dbPath = `${tmp.dir}/prov.db`
  const accounts = await createAccounts(net, 3, 'prov')
  ;[A, B, C] = accounts.map((a) => a.did) as [string, string, string]
  const live = await startLiveMirror(net, dbPath)
  try {
    article = await writeRecord(net, A, N.article, sampleMalfestio.article({ createdAt: FIXED }))
    deck = await writeRecord(net, A, N.deck, sampleMalfestio.deck({ title: 'v1' }))
    deckEdits.push(deck)
    cards = []
    for (let i = 0; i < 5; i++) cards.push(await writeRecord(net, A, N.card, sampleMalfestio.card({ deckRef: deck.uri, front: `Q${i}` })))
    foreign = await writeRecord(net, B, N.card, sampleMalfestio.card({ deckRef: deck.uri, front: 'intruder' }))
    bogus = `at://${A}/${N.card}/3jzfcijpj2z2a`
    const refs = { cardRefs: [...cards.map((c) => c.uri), bogus], sourceRefs: [article.uri] }
    deckEdits.push(await updateRecord(net, A, N.deck, deck.rkey, sampleMalfestio.deck({ title: 'v2', ...refs })))
    await live.caughtUp()
    oldKey = (await plcSigningKey(net, A))!
    newKey = await rotateSigningKey(net, A)
    deckEdits.push(await updateRecord(net, A, N.deck, deck.rkey, sampleMalfestio.deck({ title: 'v3', ...refs })))
    await deleteRecord(net, A, N.card, cards[4]!.rkey)
    deckEdits.push(await updateRecord(net, A, N.deck, deck.rkey, sampleMalfestio.deck({ title: 'v4', ...refs })))
    // C holds a block identical to A's article (same CID); deleting C must not break A's proofs
    cArticle = await writeRecord(net, C, N.article, sampleMalfestio.article({ createdAt: FIXED }))
    // B rotates too: its head becomes the #sync commit, which must be kept to prove B's card
    bKey = await rotateSigningKey(net, B)
    await live.caughtUp()
    bHead = (await latestCommit(net, B)).cid
    await deleteAccount(net, C)
    await deactivate(net, B)
    await live.caughtUp()
  } finally {
    await live.stop()
  }
}, 180_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

const flagsOf = (r: AuditReport, code: string) => r.flags.filter((f) => f.code === code).map((f) => f.uri)

describe('audit', () => {
  it('a deck: every version with its facts, re-verified now; cards, sources and flags', async () => {
    expect(cArticle.cid).toBe(article.cid)
    expect(oldKey).not.toBe(newKey)
    // the real CLI process, as a user would run it
    const { stdout } = await exec('npx', ['malfestio-mirror', 'audit', deck.uri, '--db', dbPath, '--json'], { cwd: ROOT, maxBuffer: 64 << 20 })
    const r = JSON.parse(stdout) as AuditReport

    expect(r.uri).toBe(deck.uri)
    expect(r.status).toBe('current')
    expect(r.author).toMatchObject({ did: A, handleNow: 'prov0.test', handleNowVerified: true, signingKeyNow: newKey, handleThen: 'prov0.test' })
    expect(r.repo).toMatchObject({ state: 'synchronized', active: true })
    expect(r.current).toMatchObject({ cid: deckEdits[3]!.cid, valid: true, proof: { status: 'verified' } })
    expect((r.current!.value as { title: string }).title).toBe('v4')

    // create + three edits, each with the commit the PDS reported, in order
    expect(r.versions.map((v) => v.action)).toEqual(['create', 'update', 'update', 'update'])
    expect(r.versions.map((v) => v.cid)).toEqual(deckEdits.map((e) => e.cid))
    expect(r.versions.map((v) => v.commitCid)).toEqual(deckEdits.map((e) => e.commit!.cid))
    expect(r.versions.map((v) => v.rev)).toEqual(deckEdits.map((e) => e.commit!.rev))
    expect(r.versions.map((v) => v.prevCid)).toEqual([null, ...deckEdits.slice(0, 3).map((e) => e.cid)])
    expect(r.versions.map((v) => v.signingKey)).toEqual([oldKey, oldKey, newKey, newKey])
    for (const v of r.versions) {
      expect(v.seq).toBeGreaterThan(0)
      expect(Date.parse(v.time!)).not.toBeNaN()
      expect(v.handle).toBe('prov0.test')
      expect(v.handleVerified).toBe(true)
      expect(v.proof).toEqual({ status: 'verified' })
    }
    const seqs = r.versions.map((v) => v.seq!)
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs)
    // the two versions signed before the rotation are flagged, with the seq of the #identity that rotated
    expect(r.versions.map((v) => v.keyRotatedOut !== null)).toEqual([true, true, false, false])
    const rotatedAt = r.versions[0]!.keyRotatedOut!.fromSeq!
    expect(rotatedAt).toBeGreaterThan(r.versions[1]!.seq!)
    expect(rotatedAt).toBeLessThan(r.versions[2]!.seq!)
    // each key's origin is the PLC operation that introduced it, from the DID's own (verified) log
    const log = (await (await fetch(`${net.plcUrl}/${A}/log/audit`)).json()) as {
      cid: string
      createdAt: string
      operation: { verificationMethods?: { atproto?: string } }
    }[]
    const opOf = (key: string) => log.find((e) => e.operation.verificationMethods?.atproto === key)!
    const [genesis, rotation] = [opOf(oldKey), opOf(newKey)]
    expect(genesis.cid).toBe(log[0]!.cid)
    expect(r.versions.map((v) => v.keyOrigin?.opCid)).toEqual([genesis.cid, genesis.cid, rotation.cid, rotation.cid])
    expect(r.versions[0]!.keyOrigin).toMatchObject({ createdAt: genesis.createdAt, endedBy: { cid: rotation.cid }, inLog: true })
    expect(r.versions[0]!.keyRotatedOut!.plcOp).toMatchObject({ cid: rotation.cid, createdAt: rotation.createdAt })
    expect(r.versions[3]!.keyOrigin).toMatchObject({ endedBy: null, inLog: true })

    // cards: the five listed, the bogus listed one, the foreign claimant
    const byUri = new Map(r.deck!.cards.map((c) => [c.uri, c]))
    expect(r.deck!.cardRefs).toEqual([...cards.map((c) => c.uri), bogus])
    expect([...byUri.keys()].sort()).toEqual([...cards.map((c) => c.uri), bogus, foreign.uri].sort())
    for (const c of cards.slice(0, 4)) {
      expect(byUri.get(c.uri)).toMatchObject({ status: 'current', listed: true, claimsDeck: true, did: A })
      expect(byUri.get(c.uri)!.versions.map((v) => [v.cid, v.signingKey, v.proof.status])).toEqual([[c.cid, oldKey, 'verified']])
    }
    const gone = byUri.get(cards[4]!.uri)!
    expect(gone).toMatchObject({ status: 'deleted', listed: true, claimsDeck: true })
    expect(gone.versions.map((v) => [v.action, v.signingKey, v.proof.status])).toEqual([
      ['create', oldKey, 'verified'],
      ['delete', newKey, 'verified'],
    ])
    expect((gone.lastValue as { front: string }).front).toBe('Q4')
    expect(byUri.get(bogus)).toMatchObject({ status: 'missing', listed: true, versions: [] })
    expect(byUri.get(foreign.uri)).toMatchObject({ status: 'current', listed: false, claimsDeck: true, did: B, author: { handleNow: 'prov1.test' } })
    expect(byUri.get(foreign.uri)!.repo).toMatchObject({ active: false, status: 'deactivated' })

    // sources
    expect(r.deck!.sources.map((s) => [s.uri, s.status, s.current?.cid])).toEqual([[article.uri, 'current', article.cid]])

    // flags
    expect(flagsOf(r, 'card-deleted')).toEqual([cards[4]!.uri])
    expect(flagsOf(r, 'card-missing')).toEqual([bogus])
    expect(flagsOf(r, 'card-foreign-author')).toEqual([foreign.uri])
    expect(flagsOf(r, 'repo-inactive')).toEqual([foreign.uri])
    expect(flagsOf(r, 'proof-failed')).toEqual([])
    // deck v1, v2, the five cards and the article were signed with A's rotated-out key, B's card with B's
    expect(new Set(flagsOf(r, 'key-rotated-out'))).toEqual(new Set([deck.uri, ...cards.map((c) => c.uri), article.uri, foreign.uri]))
    expect(flagsOf(r, 'key-rotated-out').filter((u) => u === deck.uri)).toHaveLength(2)
  })

  it('a human-readable report, and a card, a purged record, a desynchronized repo', async () => {
    const human = await cli(['audit', deck.uri, '--db', dbPath])
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(`deck ${deck.uri}  "v4"`)
    expect(human.stdout).toContain('ROTATED OUT')
    expect(human.stdout).toContain('key valid from PLC op')
    expect(human.stdout).toMatch(/card-foreign-author +at:\/\//)
    expect(human.stdout).toContain('versions (4)')

    const db = openDb(dbPath)
    try {
      const card = await auditRecord(db, foreign.uri)
      expect(card.card).toMatchObject({ deckRef: deck.uri, listedByDeck: false, sameAuthor: false })
      expect(card.card!.deck!.status).toBe('current')
      expect(flagsOf(card, 'card-foreign-author')).toEqual([foreign.uri])
      expect(flagsOf(card, 'repo-inactive')).toEqual([foreign.uri])

      const own = await auditRecord(db, cards[0]!.uri)
      expect(own.card).toMatchObject({ listedByDeck: true, sameAuthor: true })
      expect(flagsOf(own, 'card-foreign-author')).toEqual([])

      // C's account was deleted: its article is purged, the history keeps a tombstone
      const purged = await auditRecord(db, cArticle.uri)
      expect(purged.status).toBe('purged')
      expect(purged.versions.map((v) => [v.action, v.proof.status])).toEqual([
        ['create', 'purged'],
        ['purge', 'none'],
      ])
      expect(purged.versions[1]).toMatchObject({ prevCid: cArticle.cid, commitCid: null, signingKey: null })
      expect(purged.versions[1]!.seq).toBeGreaterThan(0)
      expect(flagsOf(purged, 'account-purged')).toEqual([cArticle.uri])

      // a handle works as the authority
      expect((await auditRecord(db, deck.uri.replace(A, 'prov0.test'))).uri).toBe(deck.uri)

      // a desynchronized repo is flagged
      db.prepare(`UPDATE repos SET state = 'desynchronized', state_reason = 'test' WHERE did = ?`).run(A)
      expect(flagsOf(await auditRecord(db, deck.uri), 'repo-desynchronized')).toEqual([deck.uri])
      db.prepare(`UPDATE repos SET state = 'synchronized', state_reason = NULL WHERE did = ?`).run(A)
    } finally {
      db.close()
    }
  })

  it('unknown and malformed URIs: a clear error and a non-zero exit', async () => {
    const [unknown, bad, none] = await Promise.all([
      cli(['audit', `at://${A}/${N.deck}/3jzfcijpj2z2a`, '--db', dbPath, '--json']),
      cli(['audit', 'https://example.com/x', '--db', dbPath]),
      cli(['audit', '--db', dbPath]),
    ])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('holds no record and no history')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('not an AT-URI')
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('needs an at:// URI')
    for (const u of ['at://did:plc:x/nsid', `at://${A}/not_an_nsid/abc`, `at://${A}/${N.deck}/a b`, `at://${A}/${N.deck}/..`]) {
      expect(() => parseRecordUri(u), u).toThrow(AtUriError)
    }
    expect(parseRecordUri(`at://Prov0.Test/${N.deck}/abc`)).toEqual({ authority: 'prov0.test', authorityIsDid: false, collection: N.deck, rkey: 'abc' })
  })
})

describe('history from a replay', () => {
  it('replaying the stream from 0 into an empty mirror, after the rotation, keeps the same versions', async () => {
    const replayPath = `${tmp.dir}/replay.db`
    await runMirror(mirrorConfig(net, replayPath, { cursor: 0, idleMs: 1500 }))
    const [live, replay] = [openDb(dbPath), openDb(replayPath)]
    try {
      const facts = (r: AuditReport) =>
        [r, ...(r.deck?.cards ?? [])].map((x) => [x.uri, x.versions.map((v) => [v.action, v.cid, v.rev, v.commitCid, v.seq, v.signingKey, v.keyOrigin?.opCid, v.proof.status])])
      const [a, b] = [await auditRecord(live, deck.uri), await auditRecord(replay, deck.uri)]
      expect(facts(b)).toEqual(facts(a))
      expect(b.versions.map((v) => v.signingKey)).toEqual([oldKey, oldKey, newKey, newKey])
      // B was deactivated before the replay: its card's commit is proven and kept, its current state is not held
      const card = (r: AuditReport) => r.deck!.cards.find((c) => c.uri === foreign.uri)!
      expect([card(a).status, card(b).status]).toEqual(['current', 'history-only'])
      expect(card(b)).toMatchObject({ claimsDeck: true, listed: false, lastValue: { front: 'intruder' } })
      expect(flagsOf(b, 'card-foreign-author')).toEqual([foreign.uri])
      expect(flagsOf(b, 'repo-inactive')).toEqual([foreign.uri])
    } finally {
      live.close()
      replay.close()
    }
  })
})

describe('export-proof', () => {
  it('the current record: a CAR @atproto/repo verifies with the DID key, the same blocks the PDS serves', async () => {
    const file = `${tmp.dir}/deck.car`
    const run = await cli(['export-proof', deck.uri, '--db', dbPath, '--out', file, '--json'])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ at: 'head', cid: deckEdits[3]!.cid, signingKey: newKey })
    const car = new Uint8Array(readFileSync(file))
    const didKey = (await plcSigningKey(net, A))!
    const claim = { collection: N.deck, rkey: deck.rkey, cid: parseCid(deckEdits[3]!.cid) }
    const { verified, unverified } = await verifyProofs(car, [claim], A, didKey)
    expect(verified).toHaveLength(1)
    expect(unverified).toHaveLength(0)
    const records = await verifyRecords(car, A, didKey)
    expect(records.map((x) => [x.collection, x.rkey, (x.record as { title: string }).title])).toEqual([[N.deck, deck.rkey, 'v4']])
    // a stale claim does not verify, and another DID's key does not either
    expect((await verifyProofs(car, [{ ...claim, cid: parseCid(deckEdits[2]!.cid) }], A, didKey)).unverified).toHaveLength(1)
    await expect(verifyRecords(car, A, (await plcSigningKey(net, B))!)).rejects.toThrow(/signature/)

    // what the PDS's own com.atproto.sync.getRecord serves: same root, same blocks
    const res = await fetch(`${net.pdsUrl}/xrpc/com.atproto.sync.getRecord?did=${A}&collection=${N.deck}&rkey=${deck.rkey}`)
    const theirs = new Uint8Array(await res.arrayBuffer())
    const { readCarWithRoot } = await import('@atproto/repo')
    const [a, b] = [await readCarWithRoot(car), await readCarWithRoot(theirs)]
    expect(a.root.toString()).toBe(b.root.toString())
    expect(a.blocks.cids().map(String).sort()).toEqual(b.blocks.cids().map(String).sort())
  })

  it('a past version (signed by the rotated-out key) and a deleted card (proof of absence)', async () => {
    const db = openDb(dbPath)
    try {
      const v1 = await exportRecordProof(db, deck.uri, { rev: deckEdits[0]!.commit!.rev })
      expect(v1).toMatchObject({ at: 'version', commitCid: deckEdits[0]!.commit!.cid, cid: deck.cid, signingKey: oldKey })
      expect((await verifyRecords(v1.car, A, oldKey)).map((x) => (x.record as { title: string }).title)).toEqual(['v1'])
      await expect(verifyRecords(v1.car, A, newKey)).rejects.toThrow(/signature/)

      const gone = await buildRecordProofCar(db, cards[4]!.uri)
      expect(gone.cid).toBeNull()
      const absent = { collection: N.card, rkey: cards[4]!.rkey, cid: null }
      expect((await verifyProofs(gone.car, [absent], A, newKey)).verified).toEqual([absent])
      // A's article proof survives the purge of C, who held the same block
      const art = await exportRecordProof(db, article.uri)
      expect((await verifyProofs(art.car, [{ collection: N.article, rkey: article.rkey, cid: parseCid(article.cid) }], A, newKey)).verified).toHaveLength(1)
      await expect(exportRecordProof(db, cArticle.uri)).rejects.toThrow(/purged|no head/)
      // B's last commit is the #sync its key rotation emitted: the mirror keeps it as the head
      const fb = await exportRecordProof(db, foreign.uri)
      expect(fb).toMatchObject({ commitCid: bHead, signingKey: bKey, cid: foreign.cid })
      expect((await verifyProofs(fb.car, [{ collection: N.card, rkey: foreign.rkey, cid: parseCid(foreign.cid) }], B, bKey)).verified).toHaveLength(1)
      await expect(exportRecordProof(db, deck.uri, { rev: '3jzfcijpj2z2a' })).rejects.toThrow(/no version/)
    } finally {
      db.close()
    }
    // the PDS agrees the card is gone
    await expect(xrpcQuery(net, 'com.atproto.repo.getRecord', { repo: A, collection: N.card, rkey: cards[4]!.rkey })).rejects.toThrow()
  })
})

describe('verify', () => {
  it('the untouched store re-verifies (purged rows skipped, not failed)', async () => {
    const r = await cli(['verify', '--db', dbPath, '--json'])
    expect(r.code, r.stdout).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.ok).toBe(true)
    expect(report.failures).toEqual([])
    expect(report.checked.record_versions).toBeGreaterThanOrEqual(14)
    expect(report.checked.records).toBe(7) // A: article, deck, 4 cards; B: 1 card; C purged
    expect(report.skipped.tombstones).toBe(1)
    expect(report.skipped.purgedVersions).toBe(1)
    expect(r.stderr).toMatch(/verify: repos \d+\/\d+/)
  })

  const BLOCK_KEY = 'repo = (SELECT id FROM dids WHERE did = ?) AND cid = ?'
  const tampered = (name: string, sql: string, ...params: unknown[]): string => {
    const path = `${tmp.dir}/${name}.db`
    copyFileSync(dbPath, path)
    const db = new Database(path)
    expect(db.prepare(sql).run(...params).changes).toBe(1)
    db.close()
    return path
  }

  it("a record's JSON changed in SQLite: verify names the records row and exits 1", async () => {
    const path = tampered('json', `UPDATE records SET value_json = json_set(value_json, '$.title', 'forged') WHERE uri = ?`, deck.uri)
    const [r, human] = await Promise.all([cli(['verify', '--db', path, '--json']), cli(['verify', '--db', path])])
    expect(r.code, r.stderr).toBe(1)
    const { failures } = JSON.parse(r.stdout)
    expect(failures).toEqual([expect.objectContaining({ table: 'records', row: `records uri=${deck.uri}`, code: 'value-mismatch' })])
    expect(human.code).toBe(1)
    expect(human.stdout).toContain(`records uri=${deck.uri}`)
    expect(human.stdout).toContain('1 FAILURE')
  })

  // A record's bytes are kept once, as its block (schema 12): the records row is checked against it.
  it("a record's block changed in SQLite: verify names the block and the records row and exits 1", async () => {
    const card = cards[0]!
    const db = new Database(dbPath, { readonly: true })
    const cbor = db.prepare(`SELECT bytes FROM blocks WHERE ${BLOCK_KEY}`).pluck().get(A, cidBinary(card.cid)) as Buffer
    db.close()
    const forged = Buffer.from(cbor.toString('latin1').replace('Q0', 'Q9'), 'latin1')
    expect(forged.equals(cbor)).toBe(false)
    const path = tampered('cbor', `UPDATE blocks SET bytes = ? WHERE ${BLOCK_KEY}`, forged, A, cidBinary(card.cid))
    const r = await cli(['verify', '--db', path, '--json'])
    expect(r.code).toBe(1)
    const { failures } = JSON.parse(r.stdout) as { failures: { table: string; row: string; key: unknown; code: string; message: string }[] }
    expect(failures.map((f) => f.row)).toContain(`blocks did=${A} cid=${card.cid}`)
    const row = failures.find((f) => f.table === 'records')
    expect(row).toMatchObject({ key: { uri: card.uri }, code: 'cid-mismatch' })
    expect(row!.message).toContain(`record block ${card.cid} hashes to`)
    expect(failures.every((f) => f.code === 'cid-mismatch')).toBe(true)
  })

  it("a current record's block gone from SQLite: verify names the records row as block-missing", async () => {
    const card = cards[0]!
    const r = await cli(['verify', '--db', tampered('nocbor', `DELETE FROM blocks WHERE ${BLOCK_KEY}`, A, cidBinary(card.cid)), '--json'])
    expect(r.code).toBe(1)
    const { failures } = JSON.parse(r.stdout) as { failures: { table: string; key: unknown; code: string }[] }
    expect(failures.find((f) => f.table === 'records')).toMatchObject({ key: { uri: card.uri }, code: 'block-missing' })
    expect(failures.every((f) => f.code === 'block-missing')).toBe(true)
  })

  it('a proof block changed in SQLite: verify names the block and the versions and records it proves', async () => {
    const db = new Database(dbPath, { readonly: true })
    const v = db.prepare('SELECT id, proof_cids FROM record_versions WHERE uri = ? ORDER BY rev DESC LIMIT 1').get(deck.uri) as { id: number; proof_cids: string }
    db.close()
    const node = (JSON.parse(v.proof_cids) as string[])[1]! // the deepest MST node on the deck's path (holds its entry)
    const path = tampered('block', `UPDATE blocks SET bytes = CAST(bytes || x'00' AS BLOB) WHERE ${BLOCK_KEY}`, A, cidBinary(node))
    const r = await cli(['verify', '--db', path, '--json'])
    expect(r.code, r.stderr).toBe(1)
    const { failures } = JSON.parse(r.stdout) as { failures: { row: string; code: string }[] }
    const rows = failures.map((f) => f.row)
    expect(rows, JSON.stringify(failures, null, 1)).toContain(`blocks did=${A} cid=${node}`)
    expect(rows).toContain(`record_versions id=${v.id} uri=${deck.uri} rev=${deckEdits[3]!.commit!.rev}`)
    expect(rows, JSON.stringify(failures, null, 1)).toContain(`records uri=${deck.uri}`)
    expect(failures.every((f) => f.code === 'cid-mismatch')).toBe(true)
    // and the audit shows it as a failed proof
    const tdb = openDb(path)
    try {
      expect(flagsOf(await auditRecord(tdb, deck.uri), 'proof-failed').length).toBeGreaterThan(0)
    } finally {
      tdb.close()
    }
  })

  it('a version whose stored signing key was swapped fails its signature check', async () => {
    const path = tampered('key', `UPDATE record_versions SET signing_key = ? WHERE uri = ? AND rev = ?`, newKey, deck.uri, deckEdits[0]!.commit!.rev)
    const db = openDb(path)
    try {
      const report = await verifyStore(db)
      expect(report.ok).toBe(false)
      expect(report.failures).toEqual([expect.objectContaining({ table: 'record_versions', code: 'bad-signature' })])
      expect(report.failures[0]!.key).toMatchObject({ uri: deck.uri, rev: deckEdits[0]!.commit!.rev })
    } finally {
      db.close()
    }
  })

  it('a missing proof block, a commit row that lies, a version naming another record: each named with its code', async () => {
    const probe = new Database(dbPath, { readonly: true })
    const v1 = probe.prepare('SELECT id, proof_cids, commit_cid FROM record_versions WHERE uri = ? AND rev = ?').get(deck.uri, deckEdits[0]!.commit!.rev) as {
      id: number
      proof_cids: string
      commit_cid: string
    }
    probe.close()
    const check = async (path: string) => {
      const db = openDb(path)
      try {
        return await verifyStore(db)
      } finally {
        db.close()
      }
    }
    // the record block of deck v1 is gone (no other row needs it: v2 changed the deck)
    const missing = await check(tampered('missing', `DELETE FROM blocks WHERE ${BLOCK_KEY}`, A, cidBinary(deck.cid)))
    expect(missing.failures.map((f) => [f.row, f.code])).toEqual([[`record_versions id=${v1.id} uri=${deck.uri} rev=${deckEdits[0]!.commit!.rev}`, 'block-missing']])
    // the commits row of v1 claims another data root than its signed block
    const lying = await check(tampered('commit', 'UPDATE commits SET data_cid = ? WHERE did = ? AND cid = ?', deckEdits[1]!.cid, A, v1.commit_cid))
    expect(lying.failures.map((f) => [f.row, f.code])).toEqual([[`commits did=${A} rev=${deckEdits[0]!.commit!.rev} cid=${v1.commit_cid}`, 'commit-mismatch']])
    // the version of v1 claims the CID of v2: the MST at v1's commit says otherwise
    const other = await check(tampered('mst', 'UPDATE record_versions SET cid = ? WHERE id = ?', deckEdits[1]!.cid, v1.id))
    expect(other.failures.map((f) => [f.table, f.code])).toEqual([['record_versions', 'mst-proof']])
    expect(other.failures[0]!.message).toContain(deck.cid)
  })
})
