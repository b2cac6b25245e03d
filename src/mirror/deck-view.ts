/**
 * A deck as an app shows it: the deck record, its cards (in `cardRefs` order, then cards that claim
 * the deck by `deckRef` without being listed) and its sources, each with its verification status —
 * re-proven now from the stored blocks (signature of the repo head, MST path, record bytes), checked
 * against its lexicon, and the state of its repo. Cards of hidden (inactive) accounts are named but
 * not shown.
 */
import type { Db } from '../store/db.ts'
import { cardsClaimingDeck, getCommitByCid, getCurrentRecord, listVersions, type CurrentRecordRow } from '../store/history.ts'
import { getIdentity } from '../store/identities.ts'
import { getRepo } from '../store/repos.ts'
import { AtUriError, parseRecordUri } from '../verify/at-uri.ts'
import { reverifyCurrent } from './provenance.ts'

export interface Verification {
  /** re-proven now: the repo head's signature, the MST path to the record, the record's bytes */
  proof: 'verified' | 'failed'
  proofError?: string
  /** the record against its lexicon (invalid records are kept and shown, flagged) */
  lexicon: 'valid' | 'invalid'
  invalidReason?: string
  rev: string
  /** the signed commit the proof ends at (the repo head) and the key that signed it */
  commit: string | null
  signingKey: string | null
  /** the key is still the one the DID document names */
  signingKeyCurrent: boolean | null
  author: { did: string; handle: string | null; handleVerified: boolean }
  repo: { state: string; active: boolean; status: string | null }
  /** where to fetch the proof CAR (com.atproto.sync.getRecord) */
  proofUrl: string
}

export type RefStatus = 'ok' | 'hidden' | 'deleted' | 'missing' | 'bad-uri'

export interface RecordView {
  uri: string
  status: RefStatus
  cid?: string
  value?: unknown
  verification?: Verification
}

export interface CardView extends RecordView {
  /** the deck's cardRefs lists it */
  listed: boolean
  /** its deckRef names the deck */
  claimsDeck: boolean
}

export interface DeckView extends RecordView {
  cards: CardView[]
  sources: RecordView[]
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])

async function verification(db: Db, rec: CurrentRecordRow): Promise<Verification> {
  const { proof, commitCid } = await reverifyCurrent(db, rec)
  const commit = commitCid ? getCommitByCid(db, rec.did, commitCid) : undefined
  const id = getIdentity(db, rec.did)
  const repo = getRepo(db, rec.did)
  return {
    proof: proof.status === 'verified' ? 'verified' : 'failed',
    ...(proof.status === 'failed' ? { proofError: `${proof.code}: ${proof.message}` } : {}),
    lexicon: rec.valid ? 'valid' : 'invalid',
    ...(rec.valid ? {} : { invalidReason: rec.invalidReason ?? undefined }),
    rev: rec.rev,
    commit: commitCid,
    signingKey: commit?.signingKey ?? null,
    signingKeyCurrent: commit && id?.signingKey ? commit.signingKey === id.signingKey : null,
    author: { did: rec.did, handle: id?.handle ?? null, handleVerified: id?.handleVerified ?? false },
    repo: { state: repo?.state ?? 'unknown', active: repo?.active ?? true, status: repo?.status ?? null },
    proofUrl: `/xrpc/com.atproto.sync.getRecord?${new URLSearchParams({ did: rec.did, collection: rec.collection, rkey: rec.rkey })}`,
  }
}

/** One referenced record, resolved in the mirror (never the content of a hidden account). */
async function view(db: Db, uri: string): Promise<RecordView & { row?: CurrentRecordRow }> {
  let did: string
  try {
    const p = parseRecordUri(uri)
    if (!p.authorityIsDid) return { uri, status: 'bad-uri' } // references name DIDs; a handle could be re-pointed
    did = p.authority
  } catch (err) {
    if (err instanceof AtUriError) return { uri, status: 'bad-uri' }
    throw err
  }
  // a hidden account's records are not shown, nor whether they exist
  const repo = getRepo(db, did)
  if (repo && !repo.active) return { uri, status: 'hidden' }
  const rec = getCurrentRecord(db, uri)
  if (!rec) return { uri, status: listVersions(db, uri).length ? 'deleted' : 'missing' }
  return { uri, status: 'ok', cid: rec.cid, value: JSON.parse(rec.valueJson), verification: await verification(db, rec), row: rec }
}

/**
 * The deck at `deckUri` (a DID-based URI of a current deck record) with its cards and sources.
 * The caller has checked that the deck exists and its account is active.
 */
export async function deckView(db: Db, deckUri: string): Promise<DeckView> {
  const { row: _deckRow, ...deck } = await view(db, deckUri)
  const value = (deck.value ?? {}) as Record<string, unknown>
  const cardRefs = strings(value.cardRefs)
  const claimants = cardsClaimingDeck(db, deckUri).map((r) => r.uri)
  const cards: CardView[] = []
  for (const uri of [...new Set([...cardRefs, ...claimants])]) {
    const { row, ...card } = await view(db, uri)
    const deckRef = row ? (JSON.parse(row.valueJson) as { deckRef?: unknown }).deckRef : undefined
    cards.push({ ...card, listed: cardRefs.includes(uri), claimsDeck: deckRef === deckUri })
  }
  const sources: RecordView[] = []
  for (const uri of strings(value.sourceRefs)) {
    const { row: _row, ...source } = await view(db, uri)
    sources.push(source)
  }
  return { ...deck, cards, sources }
}
