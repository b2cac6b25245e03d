/**
 * One account of the bench stream, written with @atproto/repo the way a PDS writes it: the repo at
 * stream start (what `getRepo` serves), then one signed commit per planned slot, each framed exactly
 * like a PDS's `#commit` (new blocks + covering proofs, ops with `prev`, `prevData`).
 */
import { BlockMap, DataDiff, MST, MemoryBlockstore, blocksToCarFile, signCommit } from '@atproto/repo'
import { P256Keypair, Secp256k1Keypair, type Keypair } from '@atproto/crypto'
import { TID } from '@atproto/common-web'
import { formatDidDoc, opToData } from '@did-plc/lib'
import type { Cid, LexMap } from '@atproto/lex-data'
import type { RepoOp } from '../../src/firehose/events.ts'
import { encodeEventFrame } from '../../src/firehose/wire.ts'
import { Rng, SLOT_MS, STREAM_T0_MS, type AccountPlan } from './plan.ts'
import { COLLECTION, CREATE_WEIGHTS, makeRecord, type Kind } from './records.ts'

export interface AccountKey {
  keypair: Keypair
  /** did:key of the signing key */
  didKey: string
}

export async function accountKey(plan: AccountPlan): Promise<AccountKey> {
  const keypair =
    plan.keyType === 'p256' ? await P256Keypair.import(plan.privateKey) : await Secp256k1Keypair.import(plan.privateKey)
  return { keypair, didKey: keypair.did() }
}

/** The DID document the bench PLC serves: derived from the genesis operation, as plc.directory does. */
export function didDocument(plan: AccountPlan): object {
  if (!plan.plcOp) throw new Error(`account ${plan.index} has no PLC operation`)
  return formatDidDoc(opToData(plan.did, plan.plcOp)!)
}

export const slotTimeMs = (slot: number): number => STREAM_T0_MS + slot * SLOT_MS
const usOf = (ms: number) => Math.floor(ms * 1000)

interface Write {
  action: 'create' | 'update' | 'delete'
  kind: Kind
  path: string
  record?: LexMap
}

export interface AccountOutput {
  did: string
  didKey: string
  doc: object
  /** the repo at stream start as a CAR (existing accounts only) */
  repoCar?: Uint8Array
  commits: number
  ops: number
}

/** Records of the account by path, with O(1) random pick and removal. */
class RecordIndex {
  private paths: string[] = []
  private pos = new Map<string, number>()
  readonly cids = new Map<string, string>()
  readonly malfestio: string[] = []
  readonly decks: string[] = []
  get size() {
    return this.paths.length
  }
  set(path: string, cid: string) {
    if (!this.pos.has(path)) {
      this.pos.set(path, this.paths.length)
      this.paths.push(path)
      if (path.startsWith('org.stormlightlabs.')) this.malfestio.push(path)
      if (path.startsWith(COLLECTION.deck + '/')) this.decks.push(path)
    }
    this.cids.set(path, cid)
  }
  delete(path: string) {
    const i = this.pos.get(path)
    if (i === undefined) return
    const last = this.paths.pop()!
    if (last !== path) {
      this.paths[i] = last
      this.pos.set(last, i)
    }
    this.pos.delete(path)
    this.cids.delete(path)
    for (const list of [this.malfestio, this.decks]) {
      const m = list.indexOf(path)
      if (m >= 0) list.splice(m, 1)
    }
  }
  has(path: string) {
    return this.pos.has(path)
  }
  random(rng: Rng): string | undefined {
    return this.paths.length ? this.paths[Math.floor(rng.next() * this.paths.length)] : undefined
  }
}

/**
 * Generates the account: calls `onFrame(slot, frame)` for each of its commits in slot order.
 * Deterministic for a given plan (keys, rkeys, revs, times and signatures all derive from it).
 */
export async function generateAccount(
  plan: AccountPlan,
  onFrame: (slot: number, frame: Uint8Array) => void | Promise<void>,
): Promise<AccountOutput> {
  const rng = new Rng('account', plan.index, plan.privateKey)
  const { keypair, didKey } = await accountKey(plan)
  const did = plan.did
  const clockId = plan.index % 1024
  const index = new RecordIndex()
  let lastUs = 0
  /** a TID strictly after the previous one this account made (rkeys and revs share the clock) */
  const tidAt = (ms: number) => {
    lastUs = Math.max(usOf(ms), lastUs + 1)
    return TID.fromTime(lastUs, clockId).toString()
  }
  const foreignTid = () => TID.fromTime(usOf(STREAM_T0_MS - rng.next() * 3 * 365 * 86_400_000), rng.int(0, 1023)).toString()
  const deckRkey = () => (index.decks.length ? rng.pick(index.decks).slice(COLLECTION.deck.length + 1) : undefined)
  const record = (kind: Kind, ms: number) =>
    makeRecord(kind, { did, rng, createdAt: new Date(ms).toISOString(), tid: foreignTid, deckRkey: deckRkey() })

  const storage = new MemoryBlockstore()
  let data = await MST.create(storage)
  let commitCid: Cid | null = null
  let rev: string | null = null
  let repoCar: Uint8Array | undefined
  let ops = 0

  if (!plan.isNew) {
    // the repo at stream start: records written over the three years before it
    const startMs = STREAM_T0_MS - 3 * 365 * 86_400_000
    const times = Array.from({ length: plan.initialRecords }, () => startMs + rng.next() * (STREAM_T0_MS - 60_000 - startMs)).sort((a, b) => a - b)
    const writes: Write[] = [{ action: 'create', kind: 'profile', path: `${COLLECTION.profile}/self`, record: record('profile', startMs) }]
    let hasDeck = false
    for (const t of times) {
      let kind = rng.weighted(CREATE_WEIGHTS) as Kind
      if (!hasDeck && (kind === 'card' || writes.length === plan.initialRecords)) kind = 'deck'
      hasDeck ||= kind === 'deck'
      const path = `${COLLECTION[kind]}/${tidAt(t)}`
      const w: Write = { action: 'create', kind, path, record: record(kind, t) }
      writes.push(w)
      // cards point at a deck written before them
      if (kind === 'deck') index.set(path, '')
    }
    const leaves = new BlockMap()
    for (const w of writes) {
      const cid = await leaves.add(w.record!)
      data = await data.add(w.path, cid)
      index.set(w.path, cid.toString())
    }
    const diff = await DataDiff.of(data, null)
    const newBlocks = diff.newMstBlocks
    newBlocks.addMap(leaves)
    rev = tidAt(STREAM_T0_MS - 60_000)
    const commit = await signCommit({ did, version: 3, rev, prev: null, data: await data.getPointer() }, keypair)
    commitCid = await newBlocks.add(commit)
    await storage.applyCommit({ cid: commitCid, rev, since: null, prev: null, newBlocks, relevantBlocks: newBlocks, removedCids: diff.removedCids })
    repoCar = await blocksToCarFile(commitCid, storage.blocks)
  }

  for (const slot of plan.slots) {
    const ms = slotTimeMs(slot)
    const writes = commitCid ? planWrites(ms) : genesisWrites(ms)
    const leaves = new BlockMap()
    const before = data
    const prevData = commitCid ? await before.getPointer() : null
    const frameOps: RepoOp[] = []
    const recordCids: Cid[] = []
    for (const w of writes) {
      if (w.action === 'delete') {
        frameOps.push({ action: 'delete', path: w.path, cid: null, prev: index.cids.get(w.path)! })
        data = await data.delete(w.path)
        index.delete(w.path)
        continue
      }
      const cid = await leaves.add(w.record!)
      recordCids.push(cid)
      const prev = index.cids.get(w.path)
      frameOps.push({ action: w.action, path: w.path, cid: cid.toString(), prev: w.action === 'update' ? prev : undefined })
      data = w.action === 'create' ? await data.add(w.path, cid) : await data.update(w.path, cid)
      index.set(w.path, cid.toString())
    }
    const dataCid = await data.getPointer()
    const diff = await DataDiff.of(data, commitCid ? before : null)
    const newBlocks = diff.newMstBlocks
    const relevant = new BlockMap()
    for (const w of writes) relevant.addMap(await data.getCoveringProof(w.path))
    const added = leaves.getMany(diff.newLeafCids.toList())
    newBlocks.addMap(added.blocks)
    relevant.addMap(added.blocks)
    // a record whose block already existed elsewhere in the repo still travels with its op (as a PDS does)
    for (const cid of recordCids) if (!relevant.has(cid)) relevant.set(cid, leaves.get(cid)!)
    const newRev = tidAt(ms)
    const commit = await signCommit({ did, version: 3, rev: newRev, prev: null, data: dataCid }, keypair)
    const newCid = await newBlocks.add(commit)
    relevant.set(newCid, newBlocks.get(newCid)!)
    const removed = diff.removedCids
    if (commitCid) removed.add(commitCid)
    await storage.applyCommit({ cid: newCid, rev: newRev, since: rev, prev: commitCid, newBlocks, relevantBlocks: relevant, removedCids: removed })
    const toSend = new BlockMap()
    toSend.addMap(newBlocks)
    toSend.addMap(relevant)
    const blocks = await blocksToCarFile(newCid, toSend)
    const frame = encodeEventFrame({
      type: 'commit',
      seq: slot + 1,
      repo: did,
      rev: newRev,
      since: rev,
      commit: newCid.toString(),
      blocks,
      ops: frameOps,
      prevData: prevData?.toString(),
      time: new Date(ms).toISOString(),
    })
    await onFrame(slot, frame)
    commitCid = newCid
    rev = newRev
    ops += frameOps.length
  }

  return { did, didKey, doc: didDocument(plan), repoCar, commits: plan.slots.length, ops }

  /** a new account's first commit: profile, a deck, a few follows */
  function genesisWrites(ms: number): Write[] {
    const writes: Write[] = [{ action: 'create', kind: 'profile', path: `${COLLECTION.profile}/self`, record: record('profile', ms) }]
    const deckPath = `${COLLECTION.deck}/${tidAt(ms)}`
    writes.push({ action: 'create', kind: 'deck', path: deckPath, record: record('deck', ms) })
    for (let i = rng.int(0, 4); i > 0; i--) {
      writes.push({ action: 'create', kind: 'follow', path: `${COLLECTION.follow}/${tidAt(ms)}`, record: record('follow', ms) })
    }
    return writes
  }

  /** 95.5% single-op commits, 4% a few ops, 0.5% a batch (a deck imported with its cards) */
  function planWrites(ms: number): Write[] {
    const r = rng.next()
    const touched = new Set<string>()
    const writes: Write[] = []
    if (r >= 0.995) {
      const deckPath = `${COLLECTION.deck}/${tidAt(ms)}`
      writes.push({ action: 'create', kind: 'deck', path: deckPath, record: record('deck', ms) })
      const deck = deckPath.slice(COLLECTION.deck.length + 1)
      for (let i = rng.int(5, 25); i > 0; i--) {
        const rec = makeRecord('card', { did, rng, createdAt: new Date(ms).toISOString(), tid: foreignTid, deckRkey: deck })
        writes.push({ action: 'create', kind: 'card', path: `${COLLECTION.card}/${tidAt(ms)}`, record: rec })
      }
      return writes
    }
    const n = r < 0.955 ? 1 : rng.int(2, 5)
    while (writes.length < n) {
      const action = rng.weighted({ create: 88, delete: 9, update: 3 })
      if (action === 'delete' && index.size > 1) {
        const path = index.random(rng)!
        if (path.endsWith('/self') || touched.has(path)) continue
        touched.add(path)
        writes.push({ action, kind: kindOf(path), path })
      } else if (action === 'update' && index.size > 0) {
        const path = rng.next() < 0.5 && index.malfestio.length ? rng.pick(index.malfestio) : `${COLLECTION.profile}/self`
        if (touched.has(path) || !index.has(path)) continue
        touched.add(path)
        const kind = kindOf(path)
        writes.push({ action, kind, path, record: record(kind, ms) })
      } else {
        const kind = rng.weighted(CREATE_WEIGHTS) as Kind
        const path = `${COLLECTION[kind]}/${tidAt(ms)}`
        touched.add(path)
        writes.push({ action: 'create', kind, path, record: record(kind, ms) })
      }
    }
    return writes
  }
}

const KIND_OF = new Map(Object.entries(COLLECTION).map(([k, c]) => [c, k as Kind]))
const kindOf = (path: string): Kind => KIND_OF.get(path.slice(0, path.indexOf('/')))!
