// The read API over a mirror fed by a real dev-env PDS + PLC, compared with the PDS's own answers:
// getRecord and listRecords (every page, both orders, the same cursors), errors, hidden accounts,
// com.atproto.sync.getRecord proofs checked with @atproto/repo, and the deck view.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCid } from '@atproto/lex-data'
import { verifyProofs, verifyRecords } from '@atproto/repo'
import { startApiServer, type RunningApi } from '../src/api/server.ts'
import { availableRepo, XrpcError } from '../src/api/xrpc.ts'
import { deckView } from '../src/mirror/deck-view.ts'
import { createStoreMetrics } from '../src/mirror/metrics.ts'
import { runMirror } from '../src/mirror/run.ts'
import { openDb, type Db } from '../src/store/db.ts'
import {
  createAccounts, deactivate, plcSigningKey, seedMalfestio, startDevnet, takedown, writeRecord, MALFESTIO_COLLECTIONS, MALFESTIO_NSIDS,
  sampleMalfestio, type Devnet, type SeedSummary, type TestAccount,
} from './helpers/devnet.ts'
import { readCarParts } from './helpers/fake-relay.ts'
import { mirrorConfig, tempDir } from './helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let accounts: TestAccount[]
let seed: SeedSummary
let db: Db
let api: RunningApi
let extraDeck: { uri: string; rkey: string }
let foreignCard: string
let hiddenCard: string
const N = MALFESTIO_NSIDS

/** GET on the mirror or the PDS: status and parsed body (or raw bytes for a CAR). */
async function get(base: string, path: string, params: Record<string, string | number | boolean | undefined> = {}) {
  const url = new URL(path, base)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v))
  const res = await fetch(url)
  const type = res.headers.get('content-type') ?? ''
  if (type.startsWith('application/vnd.ipld.car')) return { status: res.status, type, body: undefined as any, bytes: new Uint8Array(await res.arrayBuffer()) }
  const text = await res.text()
  let body: any
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, type, body, bytes: undefined as Uint8Array | undefined }
}
/** A CAR as its root and its blocks (CID → bytes, in CID order). */
function carParts(bytes: Uint8Array): { root: string; blocks: [string, string][] } {
  const { root, blocks } = readCarParts(bytes)
  return { root, blocks: [...blocks].map(([cid, b]): [string, string] => [cid, Buffer.from(b).toString('hex')]).sort(([x], [y]) => (x < y ? -1 : 1)) }
}
const mirror = (path: string, params?: Record<string, string | number | boolean | undefined>) => get(api.url, path, params)
const pds = (path: string, params?: Record<string, string | number | boolean | undefined>) => get(net.pdsUrl, path, params)

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir('mm-api-')
  accounts = await createAccounts(net, 4, 'api')
  seed = await seedMalfestio(net, accounts)
  const [a, b, , d] = accounts as [TestAccount, TestAccount, TestAccount, TestAccount]
  // enough decks for several pages
  for (let i = 0; i < 7; i++) await writeRecord(net, a.did, N.deck, sampleMalfestio.deck({ title: `Extra deck ${i}` }))
  // a deck whose cardRefs name a card of its author, one of an account about to be hidden, one never written, and junk
  const own = seed.expected[a.did]![N.card]![0]!.uri
  hiddenCard = seed.expected[b.did]![N.card]![0]!.uri
  const never = `at://${a.did}/${N.card}/3zzzzzzzzzzzz`
  const d0 = await writeRecord(net, a.did, N.deck, sampleMalfestio.deck({ title: 'Mixed refs', cardRefs: [own, hiddenCard, never] }))
  extraDeck = { uri: d0.uri, rkey: d0.rkey }
  // a card of another author that claims the deck without being listed
  foreignCard = (await writeRecord(net, d.did, N.card, sampleMalfestio.card({ deckRef: d0.uri, front: 'borrowed', back: 'card' }))).uri
  const dbPath = `${tmp.dir}/api.db`
  expect((await runMirror(mirrorConfig(net, dbPath, { cursor: 0, idleMs: 1500 }))).stats.rejected).toBe(0)
  // two accounts go dark after the mirror has their records: the next run hides them
  await deactivate(net, b.did)
  await takedown(net, accounts[2]!.did)
  expect((await runMirror(mirrorConfig(net, dbPath, { idleMs: 1500 }))).stats.rejected).toBe(0)
  db = openDb(dbPath, { readonly: true })
  api = await startApiServer({ db, port: 0, metrics: createStoreMetrics(db).text, deckView })
}, 180_000)

afterAll(async () => {
  await api?.close()
  db?.close()
  await net?.close()
  tmp?.cleanup()
})

describe('com.atproto.repo.getRecord', () => {
  it('answers every record as the PDS does (uri, cid, value), by DID and by verified handle', async () => {
    const [a, , , d] = accounts as [TestAccount, TestAccount, TestAccount, TestAccount]
    let n = 0
    for (const acc of [a, d]) {
      for (const c of MALFESTIO_COLLECTIONS) {
        const listed = await pds('/xrpc/com.atproto.repo.listRecords', { repo: acc.did, collection: c, limit: 100 })
        for (const r of listed.body.records as { uri: string; cid: string }[]) {
          const rkey = r.uri.split('/').pop()!
          const want = await pds('/xrpc/com.atproto.repo.getRecord', { repo: acc.did, collection: c, rkey })
          const got = await mirror('/xrpc/com.atproto.repo.getRecord', { repo: acc.did, collection: c, rkey })
          expect(got.status).toBe(200)
          expect(got.body).toEqual(want.body)
          // the same record asked for by handle and with its cid
          const byHandle = await mirror('/xrpc/com.atproto.repo.getRecord', { repo: acc.handle, collection: c, rkey, cid: r.cid })
          expect(byHandle.body).toEqual(want.body)
          n++
        }
      }
    }
    expect(n).toBeGreaterThan(25)
  })

  it('gives the PDS status and error name for a wrong cid, an absent record and bad parameters', async () => {
    const a = accounts[0]!
    const deck = seed.expected[a.did]![N.deck]![0]!
    const rkey = deck.uri.split('/').pop()!
    const otherCid = seed.expected[a.did]![N.note]![0]!.cid
    const cases: Record<string, string | number | undefined>[] = [
      { repo: a.did, collection: N.deck, rkey, cid: otherCid }, // exists, other cid
      { repo: a.did, collection: N.deck, rkey: '3aaaaaaaaaaaa' }, // never written
      { repo: a.did, collection: N.card, rkey: seed.ops.find((o) => o.action === 'delete' && o.did === a.did)!.uri.split('/').pop() }, // deleted
      { repo: a.did, collection: N.deck }, // no rkey
      { collection: N.deck, rkey }, // no repo
      { repo: a.did, collection: 'not an nsid', rkey },
    ]
    for (const params of cases) {
      const want = await pds('/xrpc/com.atproto.repo.getRecord', params)
      const got = await mirror('/xrpc/com.atproto.repo.getRecord', params)
      expect({ params, status: got.status, error: got.body.error }).toEqual({ params, status: want.status, error: want.body.error })
      expect(typeof got.body.message).toBe('string')
    }
    // a repo the mirror does not hold
    const unknown = await mirror('/xrpc/com.atproto.repo.getRecord', { repo: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', collection: N.deck, rkey })
    expect(unknown).toMatchObject({ status: 400, body: { error: 'RepoNotFound' } })
  })
})

describe('com.atproto.repo.listRecords', () => {
  /** Every page of a listing, following cursors, as [records, cursor] per page. */
  async function pages(ask: typeof mirror, params: Record<string, string | number | boolean | undefined>) {
    const out: unknown[] = []
    let cursor: string | undefined
    for (let i = 0; i < 50; i++) {
      const res = await ask('/xrpc/com.atproto.repo.listRecords', { ...params, cursor })
      expect(res.status).toBe(200)
      out.push(res.body)
      if (!res.body.cursor || res.body.records.length === 0) return out
      cursor = res.body.cursor
    }
    throw new Error('too many pages')
  }

  it('pages exactly as the PDS: same records, same cursors, in both orders and any limit', async () => {
    const [a, , , d] = accounts as [TestAccount, TestAccount, TestAccount, TestAccount]
    let compared = 0
    for (const acc of [a, d]) {
      for (const c of MALFESTIO_COLLECTIONS) {
        for (const limit of [undefined, 1, 2, 3, 100]) {
          for (const reverse of [undefined, false, true]) {
            const params = { repo: acc.did, collection: c, limit, reverse }
            const want = await pages(pds, params)
            expect(await pages(mirror, params)).toEqual(want)
            compared += want.length
          }
        }
      }
    }
    // the 9 decks of account a, 2 per page: 5 full pages then the empty one
    const decks = await pages(mirror, { repo: a.did, collection: N.deck, limit: 2 })
    expect(decks.length).toBe(6)
    expect(compared).toBeGreaterThan(100)
  })

  it('starts after any cursor as the PDS does, and refuses the same bad parameters', async () => {
    const a = accounts[0]!
    for (const cursor of ['', '0', '3k', 'zzzzzzzzzzzzz', '~']) {
      for (const reverse of [false, true]) {
        const params = { repo: a.did, collection: N.deck, limit: 4, cursor, reverse }
        expect((await mirror('/xrpc/com.atproto.repo.listRecords', params)).body).toEqual(
          (await pds('/xrpc/com.atproto.repo.listRecords', params)).body,
        )
      }
    }
    for (const params of [
      { repo: a.did, collection: N.deck, limit: 0 },
      { repo: a.did, collection: N.deck, limit: 101 },
      { repo: a.did, collection: N.deck, limit: 'many' },
      { repo: a.did, collection: N.deck, reverse: 'sideways' },
      { repo: a.did },
    ]) {
      const want = await pds('/xrpc/com.atproto.repo.listRecords', params)
      const got = await mirror('/xrpc/com.atproto.repo.listRecords', params)
      expect({ params, status: got.status, error: got.body.error }).toEqual({ params, status: want.status, error: want.body.error })
    }
  })
})

describe('hidden accounts', () => {
  it('answer RepoDeactivated / RepoTakendown on every read, as the PDS sync endpoints do', async () => {
    const [, b, c] = accounts as [TestAccount, TestAccount, TestAccount]
    for (const [acc, error] of [[b, 'RepoDeactivated'], [c, 'RepoTakendown']] as const) {
      const rec = seed.expected[acc.did]![N.deck]![0]!
      const rkey = rec.uri.split('/').pop()!
      const syncParams = { did: acc.did, collection: N.deck, rkey }
      const want = await pds('/xrpc/com.atproto.sync.getRecord', syncParams)
      expect(want).toMatchObject({ status: 400, body: { error } })
      expect(await mirror('/xrpc/com.atproto.sync.getRecord', syncParams)).toMatchObject({ status: 400, body: { error } })
      expect(await mirror('/xrpc/com.atproto.repo.getRecord', { repo: acc.did, collection: N.deck, rkey })).toMatchObject({ status: 400, body: { error } })
      expect(await mirror('/xrpc/com.atproto.repo.listRecords', { repo: acc.did, collection: N.deck })).toMatchObject({ status: 400, body: { error } })
      expect(await mirror(`/decks/${acc.did}/${rkey}`)).toMatchObject({ status: 400, body: { error } })
    }
    // the records are kept (hidden), not lost
    expect(db.prepare('SELECT COUNT(*) FROM records WHERE did = ?').pluck().get(b.did)).toBeGreaterThan(5)
  })
})

describe('com.atproto.sync.getRecord', () => {
  it('serves proof CARs that @atproto/repo verifies with the DID key, with the root and blocks the PDS serves', async () => {
    const [a, , , d] = accounts as [TestAccount, TestAccount, TestAccount, TestAccount]
    let n = 0
    for (const acc of [a, d]) {
      const key = (await plcSigningKey(net, acc.did))!
      for (const c of MALFESTIO_COLLECTIONS) {
        const listed = await pds('/xrpc/com.atproto.repo.listRecords', { repo: acc.did, collection: c, limit: 100 })
        for (const r of listed.body.records as { uri: string; cid: string; value: unknown }[]) {
          const rkey = r.uri.split('/').pop()!
          const got = await mirror('/xrpc/com.atproto.sync.getRecord', { did: acc.did, collection: c, rkey })
          expect(got.status).toBe(200)
          expect(got.type).toBe('application/vnd.ipld.car')
          const claims = await verifyRecords(got.bytes!, acc.did, key)
          const claim = claims.find((x) => x.collection === c && x.rkey === rkey)
          expect(claim).toBeDefined()
          expect(JSON.parse(JSON.stringify(claim!.record))).toEqual(JSON.parse(JSON.stringify(r.value)))
          const proofs = await verifyProofs(got.bytes!, [{ collection: c, rkey, cid: parseCid(r.cid) }], acc.did, key)
          expect(proofs.unverified).toEqual([])
          // the PDS's own proof: the same root (the repo head) and the same blocks
          const want = await pds('/xrpc/com.atproto.sync.getRecord', { did: acc.did, collection: c, rkey })
          expect(carParts(got.bytes!)).toEqual(carParts(want.bytes!))
          n++
        }
      }
    }
    expect(n).toBeGreaterThan(25)
  })

  it('proves a deleted record absent, and refuses a key with another DID', async () => {
    const a = accounts[0]!
    const key = (await plcSigningKey(net, a.did))!
    const gone = seed.ops.find((o) => o.action === 'delete' && o.did === a.did)!.uri
    const [, , , collection, rkey] = gone.split('/') as [string, string, string, string, string]
    const got = await mirror('/xrpc/com.atproto.sync.getRecord', { did: a.did, collection, rkey })
    expect(got.status).toBe(200)
    const proofs = await verifyProofs(got.bytes!, [{ collection, rkey, cid: null }], a.did, key)
    expect(proofs.verified).toHaveLength(1)
    const otherKey = (await plcSigningKey(net, accounts[3]!.did))!
    await expect(verifyRecords(got.bytes!, a.did, otherKey)).rejects.toThrow(/signature/i)
  })
})

describe('decks', () => {
  it('a deck with its cards resolved, re-proven, in cardRefs order', async () => {
    const a = accounts[0]!
    const deck = seed.expected[a.did]![N.deck]![0]!
    const rkey = deck.uri.split('/').pop()!
    const res = await mirror(`/decks/${a.did}/${rkey}`)
    expect(res.status).toBe(200)
    const v = res.body
    expect(v).toMatchObject({ uri: deck.uri, status: 'ok', cid: deck.cid, value: deck.value })
    expect(v.verification).toMatchObject({ proof: 'verified', lexicon: 'valid', repo: { state: 'synchronized', active: true }, signingKeyCurrent: true })
    expect(v.verification.signingKey).toBe(await plcSigningKey(net, a.did))
    const refs = deck.value.cardRefs as string[]
    expect(v.cards.map((c: { uri: string }) => c.uri)).toEqual(refs)
    for (const card of v.cards) {
      const want = seed.expected[a.did]![N.card]!.find((c) => c.uri === card.uri)!
      expect(card).toMatchObject({ status: 'ok', listed: true, claimsDeck: true, cid: want.cid, value: want.value, verification: { proof: 'verified', lexicon: 'valid' } })
      // the proof the view points at is served
      expect((await mirror(card.verification.proofUrl)).status).toBe(200)
    }
    expect(v.sources.map((s: { uri: string; status: string }) => [s.uri, s.status])).toEqual((deck.value.sourceRefs as string[]).map((u) => [u, 'ok']))
    // the same through the XRPC query of the project's namespace
    const viaXrpc = await mirror('/xrpc/org.stormlightlabs.malfestio.mirror.getDeck', { uri: deck.uri })
    expect(viaXrpc.body).toEqual(v)
  })

  it('names missing, hidden and foreign cards without showing hidden content', async () => {
    const res = await mirror(`/decks/${accounts[0]!.handle}/${extraDeck.rkey}`)
    expect(res.status).toBe(200)
    const byUri = Object.fromEntries(res.body.cards.map((c: { uri: string }) => [c.uri, c]))
    const refs = (await pds('/xrpc/com.atproto.repo.getRecord', { repo: accounts[0]!.did, collection: N.deck, rkey: extraDeck.rkey })).body.value.cardRefs
    expect(res.body.cards.map((c: { uri: string }) => c.uri)).toEqual([...refs, foreignCard])
    expect(byUri[refs[0]]).toMatchObject({ status: 'ok', listed: true })
    expect(byUri[hiddenCard]).toEqual({ uri: hiddenCard, status: 'hidden', listed: true, claimsDeck: false })
    expect(byUri[refs[2]]).toMatchObject({ status: 'missing', listed: true })
    expect(byUri[foreignCard]).toMatchObject({ status: 'ok', listed: false, claimsDeck: true, verification: { proof: 'verified', author: { did: accounts[3]!.did } } })
    expect(await mirror(`/decks/${accounts[0]!.did}/3aaaaaaaaaaaa`)).toMatchObject({ status: 400, body: { error: 'RecordNotFound' } })
    // a malformed percent-escape is the client's error (it was a 500)
    expect(await mirror(`/decks/${accounts[0]!.did}/%E0%A4%A`)).toMatchObject({ status: 400, body: { error: 'InvalidRequest' } })
  })
})

describe('health, metrics and the rest', () => {
  it('/health names the cursor and the lag; /metrics is Prometheus text from the database', async () => {
    const h = await mirror('/health')
    expect(h.status).toBe(200)
    const seq = db.prepare('SELECT MAX(seq) FROM cursor').pluck().get()
    expect(h.body).toMatchObject({ ok: true, source: 'database', cursor: seq, service: net.firehoseUrl, reposNotSynchronized: 0 })
    expect(h.body.lagSeconds).toBeGreaterThanOrEqual(0)
    expect(Date.parse(h.body.eventTime)).toBeLessThanOrEqual(Date.now())
    const m = await mirror('/metrics')
    expect(m.status).toBe(200)
    expect(m.type).toContain('text/plain')
    expect(m.body).toContain('malfestio_metrics_from_database 1')
    expect(m.body).toMatch(new RegExp(`^malfestio_cursor ${seq}$`, 'm'))
  })

  it('answers unknown methods and paths in the XRPC error shape, and only GET', async () => {
    expect(await mirror('/xrpc/com.atproto.repo.describeRepo', { repo: accounts[0]!.did })).toMatchObject({ status: 501, body: { error: 'MethodNotImplemented' } })
    expect(await mirror('/nowhere')).toMatchObject({ status: 404, body: { error: 'NotFound' } })
    const post = await fetch(new URL('/xrpc/com.atproto.repo.getRecord', api.url), { method: 'POST' })
    expect(post.status).toBe(405)
    expect((await post.json()).error).toBe('InvalidRequest')
  })
})

describe('account statuses, lag threshold, HEAD', () => {
  it('maps every inactive status to the error atproto services give, naming unknown ones', () => {
    const repo = (status: string | null) => ({ did: 'did:plc:x', active: false, status, state: 'synchronized', rev: null, headCid: null })
    const answer = (r: Parameters<typeof availableRepo>[0]) => {
      try {
        availableRepo(r, 'did:plc:x')
        return undefined
      } catch (err) {
        expect(err).toBeInstanceOf(XrpcError)
        return { status: (err as XrpcError).status, error: (err as XrpcError).error, message: (err as XrpcError).message }
      }
    }
    expect(answer(undefined)).toMatchObject({ status: 400, error: 'RepoNotFound' })
    expect(answer(repo('takendown'))).toMatchObject({ status: 400, error: 'RepoTakendown' })
    expect(answer(repo('suspended'))).toMatchObject({ status: 400, error: 'RepoSuspended' })
    expect(answer(repo('deactivated'))).toMatchObject({ status: 400, error: 'RepoDeactivated' })
    expect(answer(repo('deleted'))).toMatchObject({ status: 400, error: 'RepoNotFound' })
    expect(answer(repo('hibernating'))).toMatchObject({ status: 400, error: 'RepoDeactivated', message: expect.stringContaining('hibernating') })
    expect(answer({ ...repo(null), active: true })).toBeUndefined()
  })

  it('/health answers 503 once the cursor is older than --max-lag', async () => {
    for (const [maxLagSeconds, status] of [[0, 503], [86_400, 200]] as const) {
      const strict = await startApiServer({ db, port: 0, maxLagSeconds })
      try {
        const res = await get(strict.url, '/health')
        expect(res.status).toBe(status)
        expect(res.body.ok).toBe(status === 200)
        if (status === 503) expect(res.body.reason).toMatch(/^lag \d+ s exceeds 0 s$/)
      } finally {
        await strict.close()
      }
    }
  })

  it('HEAD answers the headers of GET without a body', async () => {
    const a = accounts[0]!
    const url = new URL('/xrpc/com.atproto.repo.listRecords', api.url)
    url.searchParams.set('repo', a.did)
    url.searchParams.set('collection', N.deck)
    const head = await fetch(url, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(100)
    expect(await head.text()).toBe('')
  })
})
