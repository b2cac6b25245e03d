/**
 * A small harness over `@atproto/dev-env` for tests and the demo: a real PDS (SQLite) plus an
 * in-memory PLC directory, in-process, with helpers to create accounts, write Malfestio records and
 * drive the identity/account events the mirror must handle (#identity, #account, #sync).
 *
 * Every network gets a private temporary folder (PDS data + blobs) that `close()` removes.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Secp256k1Keypair } from '@atproto/crypto'
import { getKey } from '@atproto/identity'
import { type PdsConfig, SeedClient, TestNetworkNoAppView } from '@atproto/dev-env'
import { scripts } from '@atproto/pds'
import { decode, decodeFirst, fromBytes, isBytes, isCidLink } from '@atcute/cbor'
import { fromUint8Array as readCar } from '@atcute/car'
import { toString as cidToString } from '@atcute/cid'
import WebSocket from 'ws'

// ───────────────────────────── network ─────────────────────────────

export type DevnetOptions = {
  /**
   * Extra PDS options (the PDS's `ServerEnvironment`, camelCase of the PDS_* env vars). Useful ones:
   * - `repoBackfillLimitMs` (PDS_REPO_BACKFILL_LIMIT_MS, default 1 day): a cursor whose next event is
   *   older than this gets `#info OutdatedCursor`, then replay from the oldest event inside the window.
   * - `maxSubscriptionBuffer` (PDS_MAX_SUBSCRIPTION_BUFFER, default 500): per-subscriber buffer of
   *   live events; overflow → error frame `ConsumerTooSlow` and close.
   */
  pds?: Partial<PdsConfig>
  /** Convenience aliases for the two options above. */
  repoBackfillLimitMs?: number
  maxSubscriptionBuffer?: number
}

export type Devnet = {
  network: TestNetworkNoAppView
  /** The seed client (holds the sessions of the accounts created through it). */
  sc: SeedClient
  /** http://localhost:PORT */
  pdsUrl: string
  /** ws://localhost:PORT (append /xrpc/com.atproto.sync.subscribeRepos, or use `subscribeUrl`) */
  firehoseUrl: string
  /** ws://localhost:PORT/xrpc/com.atproto.sync.subscribeRepos */
  subscribeUrl: string
  plcUrl: string
  /** The private temporary folder holding the PDS data; removed by close(). */
  dir: string
  close(): Promise<void>
}

/** What the helpers accept: a Devnet, or a bare dev-env network. */
export type Net = Devnet | TestNetworkNoAppView

const seedClients = new WeakMap<TestNetworkNoAppView, SeedClient>()

const networkOf = (net: Net): TestNetworkNoAppView =>
  net instanceof TestNetworkNoAppView ? net : net.network

/** The one seed client of a network (sessions of created accounts live there). */
export const seedClientOf = (net: Net): SeedClient => {
  const network = networkOf(net)
  let sc = seedClients.get(network)
  if (!sc) {
    sc = network.getSeedClient()
    seedClients.set(network, sc)
  }
  return sc
}

// TMPDIR swaps are process-wide: serialize them between concurrent startDevnet calls.
let tmpdirLock: Promise<unknown> = Promise.resolve()

export const startDevnet = async (opts: DevnetOptions = {}): Promise<Devnet> => {
  // A private folder under the system tmpdir, removed by close(). The PDS gets explicit locations
  // inside it, and TMPDIR points at it while dev-env starts: TestPds.create mkdirs a default data
  // folder in os.tmpdir() even when one is configured, and never removes it.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'malfestio-devnet-'))
  const dataDirectory = path.join(dir, 'data')
  const blobstoreDiskLocation = path.join(dir, 'blobs')
  const blobstoreDiskTmpLocation = path.join(dir, 'blobs-tmp')
  await fs.mkdir(dataDirectory, { recursive: true })
  const pds: Partial<PdsConfig> = {
    dataDirectory,
    blobstoreDiskLocation,
    blobstoreDiskTmpLocation,
    ...(opts.repoBackfillLimitMs !== undefined ? { repoBackfillLimitMs: opts.repoBackfillLimitMs } : {}),
    ...(opts.maxSubscriptionBuffer !== undefined
      ? { maxSubscriptionBuffer: opts.maxSubscriptionBuffer }
      : {}),
    ...opts.pds,
  }
  const create = async () => {
    const prev = process.env.TMPDIR
    process.env.TMPDIR = dir
    try {
      return await TestNetworkNoAppView.create({ pds })
    } finally {
      if (prev === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = prev
    }
  }
  const started = tmpdirLock.then(create, create)
  tmpdirLock = started.catch(() => undefined)
  let network: TestNetworkNoAppView
  try {
    network = await started
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true })
    throw err
  }
  const sc = seedClientOf(network)
  const pdsUrl = network.pds.url
  const firehoseUrl = pdsUrl.replace(/^http/, 'ws')
  let closed = false
  return {
    network,
    sc,
    pdsUrl,
    firehoseUrl,
    subscribeUrl: `${firehoseUrl}/xrpc/com.atproto.sync.subscribeRepos`,
    plcUrl: network.plc.url,
    dir,
    async close() {
      if (closed) return
      closed = true
      try {
        await network.close()
      } finally {
        await fs.rm(dir, { recursive: true, force: true })
      }
    },
  }
}

// ───────────────────────────── xrpc ─────────────────────────────

export class XrpcError extends Error {
  readonly status: number
  readonly error?: string
  constructor(method: string, status: number, error?: string, message?: string) {
    super(`${method}: ${status} ${error ?? ''} ${message ?? ''}`.trim())
    this.name = 'XrpcError'
    this.status = status
    this.error = error
  }
}

type Headers = Record<string, string>

const xrpcUrl = (net: Net, method: string, params?: Record<string, unknown>): URL => {
  const url = new URL(`/xrpc/${method}`, networkOf(net).pds.url)
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== undefined) url.searchParams.set(k, String(v))
  }
  return url
}

const readXrpc = async (method: string, res: Response): Promise<any> => {
  const text = await res.text()
  let body: any = undefined
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = undefined
  }
  if (!res.ok) throw new XrpcError(method, res.status, body?.error, body?.message ?? text.slice(0, 200))
  return body
}

/** GET an XRPC query on the dev PDS. */
export const xrpcQuery = async (
  net: Net,
  method: string,
  params?: Record<string, unknown>,
  headers?: Headers,
): Promise<any> => {
  const res = await fetch(xrpcUrl(net, method, params), { headers })
  return readXrpc(method, res)
}

/** POST an XRPC procedure (JSON body) on the dev PDS. */
export const xrpcProcedure = async (
  net: Net,
  method: string,
  body?: unknown,
  headers?: Headers,
): Promise<any> => {
  const res = await fetch(xrpcUrl(net, method), {
    method: 'POST',
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  })
  return readXrpc(method, res)
}

// ───────────────────────────── accounts ─────────────────────────────

export type TestAccount = {
  did: string
  handle: string
  accessJwt: string
  /** { authorization: 'Bearer …' } for calls as this account */
  headers: Headers
}

/** The auth headers of an account created through this harness (or the seed client). */
export const authHeaders = (net: Net, did: string): Headers =>
  seedClientOf(net).getHeaders(did as `did:${string}:${string}`)

export const adminHeaders = (net: Net): Headers => networkOf(net).pds.adminAuthHeaders()

/**
 * Creates `n` accounts with handles `${prefix}${i}.test` (a letter suffix is added when the name is
 * already taken on this network). The PDS wants the first handle label 3–18 characters long: keep
 * prefixes short and alphanumeric.
 */
export const createAccounts = async (net: Net, n: number, prefix = 'user'): Promise<TestAccount[]> => {
  const sc = seedClientOf(net)
  const out: TestAccount[] = []
  for (let i = 0; i < n; i++) {
    let name = `${prefix}${i}`.toLowerCase()
    for (let k = 0; sc.dids[name] !== undefined; k++) {
      name = `${prefix}${i}${String.fromCharCode(97 + (k % 26))}${k >= 26 ? k : ''}`.toLowerCase()
    }
    const handle = `${name}.test` as `${string}.test`
    const acc = await sc.createAccount(name, {
      handle,
      email: `${name}@example.test`,
      password: `${name}-password`,
    })
    out.push({
      did: acc.did,
      handle: acc.handle,
      accessJwt: acc.accessJwt,
      headers: sc.getHeaders(acc.did),
    })
  }
  return out
}

// ───────────────────────────── records ─────────────────────────────

export type WriteResult = { uri: string; cid: string; rkey: string; commit?: { cid: string; rev: string } }

export type WriteOptions = {
  /** Passed through as the `validate` flag: undefined lets the PDS validate the lexicons it knows
   *  (app.bsky.*, …) and accept unknown ones unvalidated; true rejects unknown collections. */
  validate?: boolean
}

const rkeyOf = (uri: string): string => uri.split('/').pop() as string

/** createRecord (or putRecord when `rkey` is given). */
export const writeRecord = async (
  net: Net,
  did: string,
  collection: string,
  value: Record<string, unknown>,
  rkey?: string,
  opts: WriteOptions = {},
): Promise<WriteResult> => {
  const record = { $type: collection, ...value }
  const method = rkey === undefined ? 'com.atproto.repo.createRecord' : 'com.atproto.repo.putRecord'
  const res = await xrpcProcedure(
    net,
    method,
    { repo: did, collection, rkey, record, validate: opts.validate },
    authHeaders(net, did),
  )
  return { uri: res.uri, cid: res.cid, rkey: rkeyOf(res.uri), commit: res.commit }
}

/** putRecord on an existing rkey. */
export const updateRecord = async (
  net: Net,
  did: string,
  collection: string,
  rkey: string,
  value: Record<string, unknown>,
  opts: WriteOptions = {},
): Promise<WriteResult> => writeRecord(net, did, collection, value, rkey, opts)

export const deleteRecord = async (
  net: Net,
  did: string,
  collection: string,
  rkey: string,
): Promise<{ commit?: { cid: string; rev: string } }> => {
  const res = await xrpcProcedure(
    net,
    'com.atproto.repo.deleteRecord',
    { repo: did, collection, rkey },
    authHeaders(net, did),
  )
  return { commit: res?.commit }
}

export type ListedRecord = { uri: string; cid: string; value: Record<string, unknown> }

/** Every record of a collection (com.atproto.repo.listRecords, paginated). */
export const listAllRecords = async (net: Net, did: string, collection: string): Promise<ListedRecord[]> => {
  const out: ListedRecord[] = []
  let cursor: string | undefined
  for (;;) {
    const res = await xrpcQuery(net, 'com.atproto.repo.listRecords', {
      repo: did,
      collection,
      limit: 100,
      cursor,
    })
    for (const r of res.records as ListedRecord[]) out.push({ uri: r.uri, cid: r.cid, value: r.value })
    if (!res.cursor || res.records.length === 0) break
    cursor = res.cursor
  }
  return out
}

/** The repo's current head (com.atproto.sync.getLatestCommit). */
export const latestCommit = async (net: Net, did: string): Promise<{ cid: string; rev: string }> =>
  xrpcQuery(net, 'com.atproto.sync.getLatestCommit', { did })

// ───────────────────────────── Malfestio samples ─────────────────────────────

export const MALFESTIO_NSIDS = {
  deck: 'org.stormlightlabs.malfestio.deck',
  card: 'org.stormlightlabs.malfestio.card',
  note: 'org.stormlightlabs.malfestio.note',
  collection: 'org.stormlightlabs.malfestio.collection',
  article: 'org.stormlightlabs.malfestio.source.article',
  lecture: 'org.stormlightlabs.malfestio.source.lecture',
  comment: 'org.stormlightlabs.malfestio.thread.comment',
} as const

export const MALFESTIO_COLLECTIONS: readonly string[] = Object.values(MALFESTIO_NSIDS)

const now = (): string => new Date().toISOString()

/**
 * Factories of VALID records for the seven Malfestio types (fields per
 * ../shared/reference/malfestio-lexicons). Each returns a plain object with `$type`; pass overrides
 * to change any field.
 */
export const sampleMalfestio = {
  deck: (o: { title?: string; cardRefs?: string[]; sourceRefs?: string[] } & Record<string, unknown> = {}) => ({
    $type: MALFESTIO_NSIDS.deck,
    title: 'Stormlight Orders',
    description: 'The ten orders of the Knights Radiant and their Surges.',
    tags: ['stormlight', 'cosmere'],
    cardRefs: [] as string[],
    sourceRefs: [] as string[],
    license: 'CC-BY-4.0',
    createdAt: now(),
    ...o,
  }),
  card: (o: { deckRef: string } & Record<string, unknown>) => ({
    $type: MALFESTIO_NSIDS.card,
    front: 'Which Surges do the **Windrunners** bind?',
    back: 'Adhesion and Gravitation.',
    cardType: 'basic',
    hints: ['Think of Kaladin.'],
    createdAt: now(),
    ...o,
  }),
  note: (o: Record<string, unknown> = {}) => ({
    $type: MALFESTIO_NSIDS.note,
    title: 'Ideals',
    body: '# First Ideal\n\nLife before death. Strength before weakness. Journey before destination.',
    tags: ['ideals'],
    links: [{ uri: 'https://coppermind.net/wiki/Ideal', title: 'Ideal', type: 'wiki' }],
    visibility: 'public',
    createdAt: now(),
    ...o,
  }),
  collection: (o: { items?: { type: string; ref: string; note?: string }[] } & Record<string, unknown> = {}) => ({
    $type: MALFESTIO_NSIDS.collection,
    title: 'Radiant study path',
    description: 'Start with the orders, then the ideals.',
    items: [] as { type: string; ref: string; note?: string }[],
    tags: ['path'],
    createdAt: now(),
    ...o,
  }),
  article: (o: Record<string, unknown> = {}) => ({
    $type: MALFESTIO_NSIDS.article,
    url: 'https://coppermind.net/wiki/Knights_Radiant',
    title: 'Knights Radiant',
    author: 'Coppermind editors',
    publishedAt: '2024-01-01T00:00:00.000Z',
    highlights: [{ quote: 'The Knights Radiant were an organization', start: 0, end: 41 }],
    createdAt: now(),
    ...o,
  }),
  lecture: (o: Record<string, unknown> = {}) => ({
    $type: MALFESTIO_NSIDS.lecture,
    url: 'https://www.youtube.com/watch?v=dQw4w9WgXcQ',
    title: 'Worldbuilding lecture 1',
    creator: 'BYU English 318R',
    timestamps: [
      { t: 0, label: 'Intro' },
      { t: 600, label: 'Magic systems' },
    ],
    createdAt: now(),
    ...o,
  }),
  comment: (o: { subjectRef: string; replyTo?: string } & Record<string, unknown>) => ({
    $type: MALFESTIO_NSIDS.comment,
    body: 'Great deck — the *Surgebinding* cards helped a lot.',
    createdAt: now(),
    ...o,
  }),
}

/** Records that a PDS accepts (unknown lexicon) but that break the Malfestio schemas. */
export const invalidMalfestio = {
  /** deck without the required `title` */
  deckMissingTitle: () => ({ $type: MALFESTIO_NSIDS.deck, createdAt: now() }),
  /** card whose deckRef is not an AT-URI and front has the wrong type */
  cardWrongTypes: () => ({
    $type: MALFESTIO_NSIDS.card,
    deckRef: 'not-an-at-uri',
    front: 42,
    back: 'b',
    createdAt: now(),
  }),
  /** note with a title over maxLength 300 */
  noteTooLongTitle: () => ({
    $type: MALFESTIO_NSIDS.note,
    title: 'x'.repeat(301),
    body: 'b',
    createdAt: now(),
  }),
}

export type SeedSummary = {
  /** Final expected state per DID and collection (what listRecords returns). */
  expected: Record<string, Record<string, ListedRecord[]>>
  /** Counts per collection across all accounts (final state). */
  counts: Record<string, number>
  created: number
  updated: number
  deleted: number
  /** Records written outside Malfestio (not to be mirrored). */
  other: { collection: string; uri: string }[]
  /** All operations in order. */
  ops: { action: 'create' | 'update' | 'delete'; did: string; uri: string; cid?: string }[]
}

export const OTHER_COLLECTION = 'com.example.other'

/**
 * Writes a realistic mix for every account: a deck with three cards (deck.cardRefs updated to point
 * at them), a note (later updated), a second note (later deleted), an article and a lecture, a
 * collection pointing at deck + note + sources, a comment thread (comment + reply) on the deck, one
 * card deleted (and removed from the deck). Also writes an `app.bsky.feed.post` (validated by the
 * PDS) and a `com.example.other` record per account that the mirror must ignore.
 */
export const seedMalfestio = async (
  net: Net,
  accounts: Pick<TestAccount, 'did'>[],
): Promise<SeedSummary> => {
  const ops: SeedSummary['ops'] = []
  const other: SeedSummary['other'] = []
  const final = new Map<string, ListedRecord>() // uri → record
  const put = (did: string, collection: string, value: Record<string, unknown>, rkey?: string) =>
    writeRecord(net, did, collection, value, rkey).then((r) => {
      ops.push({ action: rkey === undefined ? 'create' : 'update', did, uri: r.uri, cid: r.cid })
      final.set(r.uri, { uri: r.uri, cid: r.cid, value: { $type: collection, ...value } })
      return r
    })
  const del = async (did: string, collection: string, rkey: string) => {
    await deleteRecord(net, did, collection, rkey)
    const uri = `at://${did}/${collection}/${rkey}`
    ops.push({ action: 'delete', did, uri })
    final.delete(uri)
  }

  for (const [i, { did }] of accounts.entries()) {
    const N = MALFESTIO_NSIDS
    const deck = await put(did, N.deck, sampleMalfestio.deck({ title: `Deck ${i}` }))
    const cards: WriteResult[] = []
    for (let c = 0; c < 3; c++) {
      cards.push(
        await put(
          did,
          N.card,
          sampleMalfestio.card({ deckRef: deck.uri, front: `Q${c} of deck ${i}`, back: `A${c}` }),
        ),
      )
    }
    const article = await put(did, N.article, sampleMalfestio.article())
    const lecture = await put(did, N.lecture, sampleMalfestio.lecture())
    const deckValue = sampleMalfestio.deck({
      title: `Deck ${i}`,
      cardRefs: cards.map((c) => c.uri),
      sourceRefs: [article.uri, lecture.uri],
    })
    await put(did, N.deck, deckValue, deck.rkey)
    const note = await put(did, N.note, sampleMalfestio.note({ title: `Note ${i}` }))
    const scratch = await put(did, N.note, sampleMalfestio.note({ title: `Scratch ${i}`, visibility: 'private' }))
    await put(
      did,
      N.note,
      sampleMalfestio.note({ title: `Note ${i} (edited)`, updatedAt: now() }),
      note.rkey,
    )
    await put(
      did,
      N.collection,
      sampleMalfestio.collection({
        title: `Path ${i}`,
        items: [
          { type: 'deck', ref: deck.uri },
          { type: 'note', ref: note.uri, note: 'read after the deck' },
          { type: 'article', ref: article.uri },
          { type: 'lecture', ref: lecture.uri },
        ],
      }),
    )
    const comment = await put(did, N.comment, sampleMalfestio.comment({ subjectRef: deck.uri }))
    await put(
      did,
      N.comment,
      sampleMalfestio.comment({ subjectRef: deck.uri, replyTo: comment.uri, body: 'Agreed.' }),
    )
    // delete the last card and drop it from the deck
    const gone = cards[2]!
    await del(did, N.card, gone.rkey)
    await put(did, N.deck, { ...deckValue, cardRefs: cards.slice(0, 2).map((c) => c.uri) }, deck.rkey)
    await del(did, N.note, scratch.rkey)

    // records outside Malfestio
    const post = await writeRecord(net, did, 'app.bsky.feed.post', {
      text: `hello from account ${i}`,
      createdAt: now(),
    })
    other.push({ collection: 'app.bsky.feed.post', uri: post.uri })
    const misc = await writeRecord(net, did, OTHER_COLLECTION, { anything: true, n: i })
    other.push({ collection: OTHER_COLLECTION, uri: misc.uri })
  }

  const expected: SeedSummary['expected'] = {}
  const counts: Record<string, number> = Object.fromEntries(MALFESTIO_COLLECTIONS.map((c) => [c, 0]))
  for (const { did } of accounts) {
    expected[did] = Object.fromEntries(MALFESTIO_COLLECTIONS.map((c) => [c, [] as ListedRecord[]]))
  }
  for (const rec of final.values()) {
    const [, , did, collection] = rec.uri.split('/') as [string, string, string, string]
    expected[did]![collection]!.push(rec)
    counts[collection] = (counts[collection] ?? 0) + 1
  }
  return {
    expected,
    counts,
    created: ops.filter((o) => o.action === 'create').length,
    updated: ops.filter((o) => o.action === 'update').length,
    deleted: ops.filter((o) => o.action === 'delete').length,
    other,
    ops,
  }
}

// ───────────────────────────── identity & account events ─────────────────────────────

/** The DID document as the dev PLC directory serves it. */
export const plcDocument = async (net: Net, did: string): Promise<any> => {
  const res = await fetch(new URL(`/${encodeURIComponent(did)}`, networkOf(net).plc.url))
  if (!res.ok) throw new Error(`PLC ${res.status} for ${did}`)
  return res.json()
}

/**
 * The did:key of the `#atproto` verification method in the PLC document. (The dev PLC still writes
 * the legacy `EcdsaSecp256k1VerificationKey2019` form with an uncompressed key: `getKey` converts.)
 */
export const plcSigningKey = async (net: Net, did: string): Promise<string | undefined> =>
  getKey(await plcDocument(net, did))

/**
 * Rotates the account's repo signing key through the PDS's own path (`scripts['rotate-keys']`):
 * a new K-256 key is written to the actor's key file, then the script publishes it in the PLC
 * document (signed with the PDS's PLC rotation key), writes an empty commit signed with the new key
 * and sequences `#identity` (no handle) followed by `#sync` (same data CID, new rev/commit).
 * Returns the new did:key. Throws if the PLC document does not name the new key afterwards.
 */
export const rotateSigningKey = async (net: Net, did: string): Promise<string> => {
  const ctx = networkOf(net).pds.ctx
  const { keyLocation } = await ctx.actorStore.getLocation(did)
  const keypair = await Secp256k1Keypair.create({ exportable: true })
  await fs.writeFile(keyLocation, await keypair.export())
  // The script reports failures with console.error (and progress with console.log) instead of
  // throwing: capture them for the duration of the call.
  const errors: string[] = []
  const { log, error } = console
  console.log = () => {}
  console.error = (...args: unknown[]) => {
    errors.push(args.map(String).join(' '))
  }
  try {
    await scripts['rotate-keys'](ctx, [did])
  } finally {
    console.log = log
    console.error = error
  }
  if (errors.length > 0) throw new Error(`rotate-keys failed: ${errors.join('; ')}`)
  const published = await plcSigningKey(net, did)
  if (published !== keypair.did()) {
    throw new Error(`rotate-keys: PLC names ${published}, expected ${keypair.did()}`)
  }
  return keypair.did()
}

/** com.atproto.identity.updateHandle (→ PLC update + #identity with the new handle). */
export const updateHandle = async (net: Net, did: string, handle: string): Promise<void> => {
  await xrpcProcedure(net, 'com.atproto.identity.updateHandle', { handle }, authHeaders(net, did))
}

/** com.atproto.server.deactivateAccount (→ #account active=false status=deactivated). */
export const deactivate = async (net: Net, did: string): Promise<void> => {
  await xrpcProcedure(net, 'com.atproto.server.deactivateAccount', {}, authHeaders(net, did))
}

/** com.atproto.server.activateAccount (→ #account active=true, #identity, #sync). */
export const activate = async (net: Net, did: string): Promise<void> => {
  await xrpcProcedure(net, 'com.atproto.server.activateAccount', undefined, authHeaders(net, did))
}

const setTakedown = async (net: Net, did: string, applied: boolean): Promise<void> => {
  await xrpcProcedure(
    net,
    'com.atproto.admin.updateSubjectStatus',
    {
      subject: { $type: 'com.atproto.admin.defs#repoRef', did },
      takedown: applied ? { applied: true, ref: `test-${Date.now()}` } : { applied: false },
    },
    adminHeaders(net),
  )
}

/** Admin takedown (→ #account active=false status=takendown). */
export const takedown = (net: Net, did: string): Promise<void> => setTakedown(net, did, true)

/** Admin reversal of a takedown (→ #account active=true). */
export const untakedown = (net: Net, did: string): Promise<void> => setTakedown(net, did, false)

/** Admin account deletion (→ #account active=false status=deleted; the PDS drops the DID's older
 *  events from its own sequencer). */
export const deleteAccount = async (net: Net, did: string): Promise<void> => {
  await xrpcProcedure(net, 'com.atproto.admin.deleteAccount', { did }, adminHeaders(net))
}

/** Tombstones the DID in the dev PLC directory (signed with the PDS's PLC rotation key). */
export const tombstoneDid = async (net: Net, did: string): Promise<void> => {
  const network = networkOf(net)
  await network.plc.getClient().tombstone(did, network.pds.ctx.plcRotationKey)
}

/** com.atproto.repo.getRepo status (active/status) as the PDS reports it. */
export const repoStatus = async (net: Net, did: string): Promise<{ active: boolean; status?: string; rev?: string }> =>
  xrpcQuery(net, 'com.atproto.sync.getRepoStatus', { did })

// ───────────────────────────── raw firehose (for assertions) ─────────────────────────────

export type RawFrame = { op: number; t?: string; body: any }

/** Bytes → Uint8Array, CID links → their string form; the rest as decoded. */
const plain = (v: unknown): any => {
  if (isBytes(v)) return fromBytes(v)
  if (isCidLink(v)) return v.$link
  if (Array.isArray(v)) return v.map(plain)
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  }
  return v
}

/**
 * Opens the PDS firehose and collects decoded frames (header + body, no verification) until `until`
 * returns true, the server closes, or `timeoutMs` passes (resolves with what it has; never rejects on
 * timeout). Bytes come back as Uint8Array and CID links as strings. For assertions about which events the PDS emits; the mirror has its own decoder.
 */
export const collectFirehose = (
  net: Devnet,
  opts: { cursor?: number; until?: (frames: RawFrame[]) => boolean; timeoutMs?: number } = {},
): Promise<RawFrame[]> =>
  new Promise((resolve, reject) => {
    const url = new URL(net.subscribeUrl)
    if (opts.cursor !== undefined) url.searchParams.set('cursor', String(opts.cursor))
    const ws = new WebSocket(url)
    const frames: RawFrame[] = []
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      ws.close()
      resolve(frames)
    }
    const timer = setTimeout(finish, opts.timeoutMs ?? 5_000)
    ws.on('message', (data: Buffer) => {
      try {
        const [header, rest] = decodeFirst(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        const [body] = decodeFirst(rest)
        frames.push({ op: header.op, t: header.t, body: plain(body) })
      } catch (err) {
        done = true
        clearTimeout(timer)
        ws.close()
        reject(err)
        return
      }
      if (opts.until?.(frames)) finish()
    })
    ws.on('close', finish)
    ws.on('error', (err) => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(err)
    })
  })

/** The sequencer's current (highest) seq, or 0. */
export const currentSeq = async (net: Net): Promise<number> =>
  (await networkOf(net).pds.ctx.sequencer.curr()) ?? 0

export type CommitObject = { did: string; version: number; data: string; rev: string; prev: string | null; sig: Uint8Array }

/** The commit object at the root of a CAR (e.g. a #commit or #sync `blocks`), CID links as strings. */
export const carRootCommit = (car: Uint8Array): { cid: string; commit: CommitObject } => {
  const reader = readCar(car)
  const root = reader.roots[0]?.$link
  if (!root) throw new Error('CAR without root')
  for (const entry of reader) {
    if (cidToString(entry.cid) === root) return { cid: root, commit: plain(decode(entry.bytes)) }
  }
  throw new Error(`CAR root ${root} not among its blocks`)
}

/** A commit object of a repo by CID (com.atproto.sync.getBlocks). */
export const fetchCommit = async (net: Net, did: string, cid: string): Promise<CommitObject> => {
  const url = xrpcUrl(net, 'com.atproto.sync.getBlocks', { did })
  url.searchParams.append('cids', cid)
  const res = await fetch(url)
  if (!res.ok) throw new XrpcError('com.atproto.sync.getBlocks', res.status)
  const reader = readCar(new Uint8Array(await res.arrayBuffer()))
  for (const entry of reader) {
    if (cidToString(entry.cid) === cid) return plain(decode(entry.bytes))
  }
  throw new Error(`commit ${cid} not returned`)
}
