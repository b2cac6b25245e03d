/**
 * Provenance of one record, offline: who wrote each version, when, with which key and handle, and
 * whether each version still re-proves from the stored blocks — plus, for a deck, its cards (those it
 * lists and those that claim it) and sources, and the flags a reviewer must see. Also the proof export.
 *
 * Wiring only: facts come from `store/history.ts` and `store/proofs.ts`, proofs are checked by
 * `verify/proof.ts`.
 */
import { decode } from '@atcute/cbor'
import { findAtUris, parseRecordUri } from '../verify/at-uri.ts'
import { checkBlock } from '../verify/car.ts'
import { ProofFailure, toProofFailure, verifyProofCar, verifyRecordProof, verifyRecordValue, type ProofFailureCode, type SignatureCache } from '../verify/proof.ts'
import type { Db } from '../store/db.ts'
import {
  CARD_COLLECTION,
  cardsClaimingDeck,
  cardUrisWithDeckRef,
  didForHandle,
  getCurrentRecord,
  listIdentityHistory,
  listPurges,
  listVersions,
  type CurrentRecordRow,
  type IdentityHistoryRow,
  type PurgeRow,
  type VersionRow,
} from '../store/history.ts'
import { getBlock, getBlocks } from '../store/blocks.ts'
import { commitKeyOrigin, getIdentity, keyOrigin } from '../store/identities.ts'
import { buildRecordProofCar, ProofUnavailableError, type RecordProofCar } from '../store/proofs.ts'
import { getRepo } from '../store/repos.ts'

export const DECK_COLLECTION = 'org.stormlightlabs.malfestio.deck'
const MALFESTIO_PREFIX = 'org.stormlightlabs.malfestio.'

/** The PLC operation that made a signing key valid (from the DID's verified PLC log). */
export interface KeyOrigin {
  opCid: string
  createdAt: string
  /** the operation that replaced the key, when one has */
  endedBy?: { cid: string; createdAt: string } | null
  /** false when that operation is no longer in the DID's verified log (nullified) */
  inLog?: boolean
}

/** Looks up the PLC operation behind the key a version's commit was verified with; null when unknown. */
export type KeyOriginLookup = (db: Db, v: { did: string; rev: string; signingKey: string }) => KeyOrigin | null

/**
 * The key origin recorded with the version's commit when it was verified against the DID's PLC log,
 * else the newest epoch of that key in the stored key history (null for did:web, or a mirror run
 * with --trust-plc-directory).
 */
export const storedKeyOrigin: KeyOriginLookup = (db, v) => {
  const o = commitKeyOrigin(db, v.did, v.rev) ?? keyOrigin(db, v.did, v.signingKey)
  return o && { opCid: o.opCid, createdAt: o.createdAt, endedBy: o.endedBy, inLog: o.inLog }
}

/** Whether a stored proof holds now. */
export type ProofStatus =
  | { status: 'verified' }
  | { status: 'failed'; code: ProofFailureCode | 'unavailable'; message: string }
  /** the account was deleted: the blocks went with it, by design */
  | { status: 'purged' }
  /** a purge tombstone: no commit was ever signed for it */
  | { status: 'none' }

/** A stored version's facts (handle = as resolved when it was accepted), and what the audit adds. */
export interface VersionAudit
  extends Pick<VersionRow, 'id' | 'action' | 'cid' | 'prevCid' | 'rev' | 'commitCid' | 'seq' | 'time' | 'signingKey' | 'handle' | 'handleVerified'> {
  /**
   * the signing key was later replaced: the seq / time of the identity change after which the mirror
   * saw another key, and the PLC operation that replaced it (when the DID's log is verified)
   */
  keyRotatedOut: { fromSeq: number | null; at: string | null; plcOp: { cid: string; createdAt: string } | null } | null
  /** the PLC operation that made the signing key valid (null when no verified PLC log is stored) */
  keyOrigin: KeyOrigin | null
  proof: ProofStatus
}

export interface AuthorAudit {
  did: string
  handleNow: string | null
  handleNowVerified: boolean
  signingKeyNow: string | null
  /** the handle known when the record's first stored version was accepted */
  handleThen: string | null
  handleThenVerified: boolean | null
}

export interface RepoAudit {
  did: string
  state: string
  stateReason: string | null
  active: boolean
  status: string | null
  rev: string | null
  headCid: string | null
  purged: PurgeRow | null
}

/**
 * current: the mirror holds it now; deleted / purged: its last version is a tombstone; history-only:
 * proven versions are stored but not the current state (its repo could not be brought up to date —
 * desynchronized or inactive); missing: never seen; not-mirrored: outside the Malfestio collections.
 */
export type RecordStatus = 'current' | 'deleted' | 'purged' | 'history-only' | 'missing' | 'not-mirrored'

export interface RecordAudit {
  uri: string
  did: string
  collection: string
  rkey: string
  status: RecordStatus
  author: AuthorAudit
  repo: RepoAudit | null
  current: {
    cid: string
    rev: string
    valid: boolean
    invalidReason: string | null
    value: unknown
    /** the record re-proven from the repo's stored head: signature, MST path, record bytes, JSON */
    proof: ProofStatus
    proofCommit: string | null
  } | null
  /** when deleted: the last value the mirror held (null when its blocks were purged) */
  lastValue: unknown
  versions: VersionAudit[]
}

export interface CardAudit extends RecordAudit {
  /** the deck's cardRefs lists it */
  listed: boolean
  /** its deckRef names the deck (current value, or last known value when deleted) */
  claimsDeck: boolean
  deckRef: string | null
}

export interface ReferenceAudit {
  field: string
  uri: string
  status: RecordStatus | 'bad-uri'
  did: string | null
  collection: string | null
  cid: string | null
}

export const FLAG_CODES = [
  'record-deleted', // the audited record is deleted (its tombstone is the last version)
  'record-history-only', // the audited record's versions are proven, its current state is not held
  'account-purged', // the author's account was deleted and its records purged
  'record-invalid', // the current record breaks its lexicon
  'proof-failed', // a version or the current record does not re-verify from the stored blocks
  'key-rotated-out', // a version was signed by a key the DID document later replaced
  'repo-desynchronized', // an involved repo is not synchronized with its upstream
  'repo-inactive', // an involved repo's account is not active (records hidden)
  'card-missing', // the deck lists a card the mirror has never seen
  'card-deleted', // the deck lists a card that was deleted
  'card-foreign-author', // a card claims the deck but its author is not the deck's author
  'card-other-deck', // the deck lists a card whose deckRef names another deck
  'source-missing', // the deck names a source the mirror has never seen
  'source-deleted', // the deck names a source that was deleted
  'ref-missing', // another reference names a Malfestio record the mirror has never seen
  'ref-deleted', // another reference names a deleted record
] as const

export type FlagCode = (typeof FLAG_CODES)[number]

export interface Flag {
  code: FlagCode
  uri: string
  message: string
}

export interface AuditReport extends RecordAudit {
  references: ReferenceAudit[]
  /** for a deck: its cards (listed in cardRefs or claiming it by deckRef) and its sources */
  deck?: { cardRefs: string[]; cards: CardAudit[]; sources: (RecordAudit & { field: string })[] }
  /** for a card: the deck it claims and whether that deck lists it */
  card?: { deckRef: string | null; deck: RecordAudit | null; listedByDeck: boolean; sameAuthor: boolean | null }
  flags: Flag[]
}

/** The URI names no record the mirror has ever held. */
export class UnknownRecordError extends Error {
  readonly code = 'not-found'
  constructor(message: string) {
    super(message)
    this.name = 'UnknownRecordError'
  }
}

export interface AuditOptions {
  /** where each version's key came from; `storedKeyOrigin` (the stored PLC key history) by default */
  keyOrigin?: KeyOriginLookup
}

const plainJson = (cbor: Uint8Array): unknown => JSON.parse(JSON.stringify(decode(cbor)))

/** Resolves `at://handle/...` through the identities the mirror holds. @throws {AtUriError} {UnknownRecordError} */
export function canonicalUri(db: Db, uri: string): { uri: string; did: string; collection: string; rkey: string } {
  const p = parseRecordUri(uri)
  const did = p.authorityIsDid ? p.authority : didForHandle(db, p.authority)
  if (!did) throw new UnknownRecordError(`the mirror knows no DID for the handle ${p.authority}`)
  return { uri: `at://${did}/${p.collection}/${p.rkey}`, did, collection: p.collection, rkey: p.rkey }
}

/** Everything a report needs about one repo, looked up once per audit. */
interface RepoFacts {
  repo: RepoAudit | null
  identity: ReturnType<typeof getIdentity>
  history: IdentityHistoryRow[]
  purges: PurgeRow[]
}

function makeContext(db: Db, opts: AuditOptions) {
  const repos = new Map<string, RepoFacts>()
  const facts = (did: string): RepoFacts => {
    let f = repos.get(did)
    if (f) return f
    const r = getRepo(db, did)
    const purges = listPurges(db, did)
    f = {
      repo: r
        ? { did, state: r.state, stateReason: r.stateReason, active: r.active, status: r.status, rev: r.rev, headCid: r.headCid, purged: purges.at(-1) ?? null }
        : null,
      identity: getIdentity(db, did),
      history: listIdentityHistory(db, did),
      purges,
    }
    repos.set(did, f)
    return f
  }
  const signatures: SignatureCache = new Set()
  return { db, opts, facts, signatures }
}

type Ctx = ReturnType<typeof makeContext>

/**
 * Whether the key was replaced after the version: the PLC operation that ended its epoch (from the
 * verified log), and the seq of the identity change after which the mirror saw another key.
 */
function rotatedOut(f: RepoFacts, key: string | null, origin: KeyOrigin | null): VersionAudit['keyRotatedOut'] {
  const now = f.identity?.signingKey ?? null
  const plcOp = origin?.endedBy ?? null
  if (!key || ((!now || key === now) && !plcOp)) return null
  const last = f.history.findLastIndex((h) => h.signingKey === key)
  const next = f.history.slice(last + 1).find((h) => h.signingKey && h.signingKey !== key)
  return { fromSeq: next?.fromSeq ?? null, at: next?.at ?? null, plcOp }
}

const failed = (err: unknown): ProofStatus => {
  if (err instanceof ProofUnavailableError) return { status: 'failed', code: 'unavailable', message: err.message }
  const f = toProofFailure(err)
  return { status: 'failed', code: f.code, message: f.message }
}

/** Re-proves one stored version from its stored proof blocks and the key it was accepted with. */
export async function reverifyVersion(db: Db, v: VersionRow, purges: PurgeRow[], signatures?: SignatureCache): Promise<ProofStatus> {
  if (v.action === 'purge') return { status: 'none' }
  if (purges.some((p) => v.id <= p.lastVersionId)) return { status: 'purged' }
  try {
    await verifyRecordProof(getBlocks(db, v.did, v.proofCids), {
      did: v.did,
      commitCid: v.commitCid!,
      signingKey: v.signingKey!,
      collection: v.collection,
      rkey: v.rkey,
      cid: v.cid,
      rev: v.rev!,
    }, signatures)
    return { status: 'verified' }
  } catch (err) {
    return failed(err)
  }
}

/**
 * Re-proves the current record from the repo's stored head: the proof CAR `export-proof` would write
 * (commit signature by the key the head was accepted with, MST path, record bytes) and the row's
 * JSON against the record's block (its CBOR, the one copy of the record's bytes the mirror keeps).
 */
export async function reverifyCurrent(
  db: Db,
  rec: CurrentRecordRow,
  signatures?: SignatureCache,
): Promise<{ proof: ProofStatus; commitCid: string | null }> {
  let built: RecordProofCar | undefined
  try {
    const cbor = getBlock(db, rec.did, rec.cid)
    if (!cbor) throw new ProofFailure('block-missing', `the record's block ${rec.cid} is not stored`, { cid: rec.cid })
    verifyRecordValue(rec.cid, cbor, rec.valueJson)
    built = await buildRecordProofCar(db, rec.uri, { checkBlock })
    await verifyProofCar(built.car, { did: rec.did, signingKey: built.signingKey, collection: rec.collection, rkey: rec.rkey, cid: rec.cid }, signatures)
    return { proof: { status: 'verified' }, commitCid: built.commitCid }
  } catch (err) {
    return { proof: failed(err), commitCid: built?.commitCid ?? null }
  }
}

async function recordAudit(ctx: Ctx, uri: string): Promise<RecordAudit> {
  const { db } = ctx
  const { did, collection, rkey } = canonicalUri(db, uri)
  const f = ctx.facts(did)
  const rows = listVersions(db, uri)
  const versions: VersionAudit[] = []
  const lookup = ctx.opts.keyOrigin ?? storedKeyOrigin
  for (const v of rows) {
    const origin = v.signingKey && v.rev ? lookup(db, { did, rev: v.rev, signingKey: v.signingKey }) : null
    versions.push({
      id: v.id,
      action: v.action,
      cid: v.cid,
      prevCid: v.prevCid,
      rev: v.rev,
      commitCid: v.commitCid,
      seq: v.seq,
      time: v.time,
      signingKey: v.signingKey,
      handle: v.handle,
      handleVerified: v.handleVerified,
      keyRotatedOut: rotatedOut(f, v.signingKey, origin),
      keyOrigin: origin,
      proof: await reverifyVersion(db, v, f.purges, ctx.signatures),
    })
  }
  const rec = getCurrentRecord(db, uri)
  let current: RecordAudit['current'] = null
  if (rec) {
    const { proof, commitCid } = await reverifyCurrent(db, rec, ctx.signatures)
    let value: unknown
    try {
      value = JSON.parse(rec.valueJson)
    } catch {
      value = null
    }
    current = { cid: rec.cid, rev: rec.rev, valid: rec.valid, invalidReason: rec.invalidReason, value, proof, proofCommit: commitCid }
  }
  const last = rows.at(-1)
  let status: RecordStatus
  if (rec) status = 'current'
  else if (!last) status = collection.startsWith(MALFESTIO_PREFIX) ? 'missing' : 'not-mirrored'
  else if (last.action === 'purge' || f.purges.some((p) => last.id <= p.lastVersionId)) status = 'purged'
  else if (last.action === 'delete') status = 'deleted'
  else status = 'history-only'
  let lastValue: unknown = null
  if (!rec) {
    const withValue = rows.findLast((v) => v.cid)
    const bytes = withValue ? getBlock(db, did, withValue.cid!) : undefined
    if (bytes) lastValue = plainJson(bytes)
  }
  const first = rows[0]
  return {
    uri,
    did,
    collection,
    rkey,
    status,
    author: {
      did,
      handleNow: f.identity?.handle ?? null,
      handleNowVerified: f.identity?.handleVerified ?? false,
      signingKeyNow: f.identity?.signingKey ?? null,
      handleThen: first ? first.handle : null,
      handleThenVerified: first ? first.handleVerified : null,
    },
    repo: f.repo,
    current,
    lastValue,
    versions,
  }
}

const valueOf = (r: RecordAudit): Record<string, unknown> | null =>
  ((r.current?.value ?? r.lastValue) as Record<string, unknown> | null) ?? null

const who = (r: RecordAudit): string => (r.author.handleNow ? `${r.did} (@${r.author.handleNow})` : r.did)

/** The flags every involved record contributes: its own state, its versions, its repo. */
function recordFlags(r: RecordAudit, flags: Flag[], seenRepos: Set<string>): void {
  if (r.current && !r.current.valid) flags.push({ code: 'record-invalid', uri: r.uri, message: `breaks its lexicon: ${r.current.invalidReason}` })
  if (r.current?.proof.status === 'failed') {
    flags.push({ code: 'proof-failed', uri: r.uri, message: `the current record does not re-verify at the repo head: ${r.current.proof.message}` })
  }
  for (const v of r.versions) {
    if (v.proof.status === 'failed') {
      flags.push({ code: 'proof-failed', uri: r.uri, message: `version ${v.action} at rev ${v.rev} does not re-verify: ${v.proof.message}` })
    }
    if (v.keyRotatedOut) {
      const k = v.keyRotatedOut
      const when = [
        k.fromSeq !== null ? `at seq ${k.fromSeq}` : k.at ? `seen ${k.at}` : '',
        k.plcOp ? `by PLC operation ${k.plcOp.cid} of ${k.plcOp.createdAt}` : '',
      ].filter(Boolean).join(', ')
      flags.push({
        code: 'key-rotated-out',
        uri: r.uri,
        message: `version ${v.action} at rev ${v.rev} was signed by ${v.signingKey}, rotated out of the DID document${when ? ` ${when}` : ''}; the DID's key is now ${r.author.signingKeyNow}`,
      })
    }
  }
  const repo = r.repo
  if (repo && !seenRepos.has(repo.did)) {
    seenRepos.add(repo.did)
    if (repo.state !== 'synchronized') {
      flags.push({ code: 'repo-desynchronized', uri: r.uri, message: `the repo ${who(r)} is ${repo.state}${repo.stateReason ? ` (${repo.stateReason})` : ''}` })
    }
    if (!repo.active) {
      flags.push({ code: 'repo-inactive', uri: r.uri, message: `the account ${who(r)} is ${repo.status ?? 'inactive'}` })
    }
  }
}

/**
 * The audit of one Malfestio record: author, every version re-verified now, references; for a deck
 * also its cards and sources; for a card the deck it claims. Flags list what a reviewer must see.
 * @throws {AtUriError} for a malformed URI, {UnknownRecordError} when the mirror never held it
 */
export async function auditRecord(db: Db, uri: string, opts: AuditOptions = {}): Promise<AuditReport> {
  const ctx = makeContext(db, opts)
  const canon = canonicalUri(db, uri).uri
  const main = await recordAudit(ctx, canon)
  if (main.status === 'missing' || main.status === 'not-mirrored') {
    throw new UnknownRecordError(`the mirror holds no record and no history for ${canon}`)
  }
  const flags: Flag[] = []
  const seenRepos = new Set<string>()
  if (main.status === 'deleted') flags.push({ code: 'record-deleted', uri: canon, message: `deleted at rev ${main.versions.at(-1)?.rev}` })
  if (main.status === 'history-only') {
    flags.push({ code: 'record-history-only', uri: canon, message: 'its versions are proven but the mirror does not hold its current state (see the repo flags)' })
  }
  if (main.status === 'purged') {
    const p = main.repo?.purged
    flags.push({ code: 'account-purged', uri: canon, message: `the account was deleted${p?.seq != null ? ` at seq ${p.seq}` : ''}; its records and blocks were purged` })
  }
  recordFlags(main, flags, seenRepos)

  const value = valueOf(main)
  const report: AuditReport = { ...main, references: [], flags }
  const handled = new Set<string>()

  if (main.collection === DECK_COLLECTION) {
    const cardRefs = Array.isArray(value?.cardRefs) ? (value.cardRefs as unknown[]).filter((x): x is string => typeof x === 'string') : []
    const sourceRefs = Array.isArray(value?.sourceRefs) ? (value.sourceRefs as unknown[]).filter((x): x is string => typeof x === 'string') : []
    for (const f of ['cardRefs', 'sourceRefs']) handled.add(f)
    // current cards claiming it, and cards known from history whose last known value claims it
    const claimants = [...new Set([...cardsClaimingDeck(db, canon).map((r) => r.uri), ...cardUrisWithDeckRef(db, canon)])]
    const cards: CardAudit[] = []
    for (const cardUri of [...new Set([...cardRefs, ...claimants])]) {
      let card: RecordAudit
      try {
        card = await recordAudit(ctx, cardUri)
      } catch {
        report.references.push({ field: 'cardRefs', uri: cardUri, status: 'bad-uri', did: null, collection: null, cid: null })
        flags.push({ code: 'card-missing', uri: cardUri, message: 'listed in cardRefs but not a record URI the mirror can resolve' })
        continue
      }
      const cv = valueOf(card)
      const deckRef = typeof cv?.deckRef === 'string' ? cv.deckRef : null
      const ca: CardAudit = { ...card, listed: cardRefs.includes(cardUri), claimsDeck: deckRef === canon, deckRef }
      if (!ca.listed && !ca.claimsDeck) continue // once claimed the deck, names another now
      cards.push(ca)
      if (ca.listed && (card.status === 'missing' || card.status === 'not-mirrored')) {
        flags.push({ code: 'card-missing', uri: cardUri, message: 'listed in cardRefs but the mirror has never seen this card' })
      }
      if (ca.listed && (card.status === 'deleted' || card.status === 'purged')) {
        const del = card.versions.at(-1)
        flags.push({ code: 'card-deleted', uri: cardUri, message: `listed in cardRefs but ${card.status} (${del?.action} at ${del?.rev ? `rev ${del.rev}` : `seq ${del?.seq}`})` })
      }
      if (ca.claimsDeck && card.did !== main.did) {
        flags.push({ code: 'card-foreign-author', uri: cardUri, message: `claims the deck but is written by ${who(card)}, not the deck's author ${who(main)}` })
      }
      if (ca.listed && deckRef && deckRef !== canon) {
        flags.push({ code: 'card-other-deck', uri: cardUri, message: `listed in cardRefs but its deckRef names ${deckRef}` })
      }
      if (card.status !== 'missing') recordFlags(card, flags, seenRepos)
    }
    const sources: (RecordAudit & { field: string })[] = []
    for (const [i, src] of sourceRefs.entries()) {
      let s: RecordAudit
      try {
        s = await recordAudit(ctx, src)
      } catch {
        report.references.push({ field: `sourceRefs[${i}]`, uri: src, status: 'bad-uri', did: null, collection: null, cid: null })
        flags.push({ code: 'source-missing', uri: src, message: 'listed in sourceRefs but not a record URI the mirror can resolve' })
        continue
      }
      sources.push({ ...s, field: `sourceRefs[${i}]` })
      if (s.status === 'missing' || s.status === 'not-mirrored') flags.push({ code: 'source-missing', uri: src, message: 'listed in sourceRefs but the mirror has never seen it' })
      if (s.status === 'deleted' || s.status === 'purged') flags.push({ code: 'source-deleted', uri: src, message: `listed in sourceRefs but ${s.status}` })
      if (s.status !== 'missing') recordFlags(s, flags, seenRepos)
    }
    report.deck = { cardRefs, cards, sources }
  }

  if (main.collection === CARD_COLLECTION) {
    handled.add('deckRef')
    const deckRef = typeof value?.deckRef === 'string' ? value.deckRef : null
    let deck: RecordAudit | null = null
    if (deckRef) {
      try {
        deck = await recordAudit(ctx, deckRef)
      } catch {
        deck = null
      }
    }
    const dv = deck ? valueOf(deck) : null
    const listedByDeck = Array.isArray(dv?.cardRefs) && (dv.cardRefs as unknown[]).includes(canon)
    report.card = { deckRef, deck, listedByDeck, sameAuthor: deck ? deck.did === main.did : null }
    if (deckRef && (!deck || deck.status === 'missing')) flags.push({ code: 'ref-missing', uri: deckRef, message: 'the card claims a deck the mirror has never seen' })
    if (deck && (deck.status === 'deleted' || deck.status === 'purged')) flags.push({ code: 'ref-deleted', uri: deckRef!, message: `the card claims a deck that was ${deck.status}` })
    if (deck && deck.status !== 'missing' && deck.did !== main.did) {
      flags.push({ code: 'card-foreign-author', uri: canon, message: `claims the deck ${deckRef}, whose author is ${who(deck)}, not the card's author ${who(main)}` })
    }
    if (deck && deck.status !== 'missing') recordFlags(deck, flags, seenRepos)
  }

  // every other AT-URI in the record (a collection's items, a comment's subject, a source's links)
  for (const ref of findAtUris(value)) {
    if (handled.has(ref.field.replace(/\[\d+\]$/, ''))) continue
    let target: RecordAudit | null = null
    try {
      target = await recordAudit(ctx, ref.uri)
    } catch {
      report.references.push({ field: ref.field, uri: ref.uri, status: 'bad-uri', did: null, collection: null, cid: null })
      continue
    }
    report.references.push({
      field: ref.field,
      uri: ref.uri,
      status: target.status,
      did: target.did,
      collection: target.collection,
      cid: target.current?.cid ?? null,
    })
    if (target.status === 'missing') flags.push({ code: 'ref-missing', uri: ref.uri, message: `${ref.field} names a record the mirror has never seen` })
    if (target.status === 'deleted' || target.status === 'purged') flags.push({ code: 'ref-deleted', uri: ref.uri, message: `${ref.field} names a record that was ${target.status}` })
  }
  return report
}

/**
 * The proof of a record as a CAR (root = signed commit; blocks = MST path + record), at the repo's
 * head or at the commit of the version with `rev`, checked before it is handed out.
 * @throws {AtUriError} {UnknownRecordError} {ProofUnavailableError} {ProofFailure}
 */
export async function exportRecordProof(db: Db, uri: string, opts: { rev?: string } = {}): Promise<RecordProofCar> {
  const canon = canonicalUri(db, uri)
  if (opts.rev === undefined && !getCurrentRecord(db, canon.uri) && listVersions(db, canon.uri).length === 0) {
    throw new UnknownRecordError(`the mirror holds no record and no history for ${canon.uri}`)
  }
  let built: RecordProofCar
  try {
    built = await buildRecordProofCar(db, canon.uri, { ...opts, checkBlock })
  } catch (err) {
    if (err instanceof ProofUnavailableError) throw err
    throw toProofFailure(err)
  }
  const rec = opts.rev === undefined ? getCurrentRecord(db, canon.uri) : undefined
  if (rec && rec.cid !== built.cid) {
    throw new ProofFailure('mst-proof', `the records row says ${rec.cid} but the repo head ${built.commitCid} maps ${canon.uri} to ${built.cid ?? 'nothing'}`)
  }
  await verifyProofCar(built.car, { did: built.did, signingKey: built.signingKey, collection: built.collection, rkey: built.rkey, cid: built.cid, rev: built.rev })
  return built
}
