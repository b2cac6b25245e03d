/**
 * The fuzz target: what the mirror does with one frame's bytes, as functions — decode, then prove
 * (#commit: verifyCommit; #sync: verifySync), then read the proven records the way
 * the store will. Every outcome must be a decoded frame, a FrameDecodeError with its code, or a
 * VerificationError with a reason from the closed list; anything else thrown is a crash.
 */
import fc from 'fast-check'
import { Secp256k1Keypair } from '@atproto/crypto'
import { decodeFrame, FrameDecodeError, type FrameErrorCode } from '../../src/firehose/frames.ts'
import { verifyCommit } from '../../src/verify/commit.ts'
import { verifySync } from '../../src/verify/sync.ts'
import { validateRecord } from '../../src/verify/lexicon.ts'
import { decodeRecord } from '../../src/verify/record.ts'
import { REASONS, VerificationError, type ReasonCode } from '../../src/verify/reasons.ts'
import { collectionMatcher, DEFAULTS } from '../../src/mirror/config.ts'
import { activate, createAccounts, deactivate, plcSigningKey, seedMalfestio, updateHandle, type Devnet } from './devnet.ts'
import { captureFrames, eventOf } from './fake-relay.ts'
import { applyMutations, mutatedFrame, type Corpus } from './mutate.ts'

export type Outcome =
  | { kind: 'undecodable'; code: FrameErrorCode }
  | { kind: 'error-frame' }
  | { kind: 'unknown-type' }
  | { kind: 'no-proof'; type: 'identity' | 'account' | 'info' }
  | { kind: 'rejected'; reason: ReasonCode }
  | { kind: 'accepted'; claims: string }

const inScope = collectionMatcher(DEFAULTS.collections)
const FRAME_CODES: readonly string[] = ['frame-too-big', 'bad-cbor', 'bad-header', 'bad-body'] satisfies FrameErrorCode[]

export class FuzzCrash extends Error {
  constructor(stage: string, cause: unknown) {
    super(`${stage} threw ${(cause as Error)?.name ?? typeof cause}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'FuzzCrash'
  }
}

/** Runs one frame through decoding and verification. Throws FuzzCrash for anything unexpected. */
export async function checkFrame(bytes: Uint8Array, keyOf: (did: string) => string): Promise<Outcome> {
  let frame
  try {
    frame = decodeFrame(bytes)
  } catch (err) {
    if (err instanceof FrameDecodeError && FRAME_CODES.includes(err.code)) return { kind: 'undecodable', code: err.code }
    throw new FuzzCrash('decodeFrame', err)
  }
  if (frame.kind === 'error') return { kind: 'error-frame' }
  if (frame.kind === 'unknown') return { kind: 'unknown-type' }
  const evt = frame.event
  if (evt.type === 'identity' || evt.type === 'account' || evt.type === 'info') return { kind: 'no-proof', type: evt.type }
  try {
    if (evt.type === 'sync') {
      const v = verifySync(evt, keyOf(evt.did))
      return { kind: 'accepted', claims: JSON.stringify({ sync: v.did, rev: v.rev, cid: v.cid }) }
    }
    const v = await verifyCommit(evt, keyOf(evt.repo), { inScope })
    // what the store does next with the proven records must not throw either
    for (const op of v.ops) {
      if (!op.recordBytes || !inScope(op.collection)) continue
      const rec = decodeRecord(op.recordBytes)
      if (rec.ok) {
        validateRecord(op.collection, rec.value)
        JSON.stringify(rec.value)
      }
    }
    return { kind: 'accepted', claims: commitClaims(v.did, v.rev, v.cid, v.ops) }
  } catch (err) {
    if (err instanceof VerificationError && (REASONS as readonly string[]).includes(err.reason)) return { kind: 'rejected', reason: err.reason }
    throw new FuzzCrash(`verify #${evt.type}`, err)
  }
}

export const commitClaims = (did: string, rev: string, cid: string, ops: { action: string; path: string; cid: string | null; prev?: string | null }[]) =>
  JSON.stringify({ commit: did, rev, cid, ops: ops.map((o) => [o.action, o.path, o.cid, o.prev ?? null]) })

export interface FuzzReport {
  runs: number
  /** outcome → count (`undecodable:bad-cbor`, `rejected:cid-mismatch`, `accepted`, …) */
  outcomes: Record<string, number>
  /** slowest single frame, ms */
  maxMs: number
  /** heap growth over the run, bytes (after a GC when `global.gc` exists) */
  heapGrowth: number
  /** honest frames re-checked between mutants, all accepted */
  honestRechecks: number
}

/**
 * Feeds `runs` mutated frames of `corpus` through `checkFrame`. Fails (throws, with fast-check's
 * seed and the shrunk mutation) on a crash, an accepted frame that claims anything the honest corpus
 * does not, or an honest frame that stops verifying after the mutants.
 */
export async function runFuzz(corpus: Corpus, keyOf: (did: string) => string, runs: number, opts: { seed?: number } = {}): Promise<FuzzReport> {
  const honest = new Set<string>()
  for (const f of corpus.frames) {
    const o = await checkFrame(f, keyOf)
    if (o.kind === 'accepted') honest.add(o.claims)
    else if (o.kind !== 'no-proof') throw new Error(`corpus frame is not honest: ${JSON.stringify(o)}`)
  }
  const outcomes: Record<string, number> = {}
  let maxMs = 0
  let honestRechecks = 0
  let n = 0
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const heap0 = process.memoryUsage().heapUsed
  await fc.assert(
    fc.asyncProperty(mutatedFrame(corpus.frames.length), async ({ base, mutations }) => {
      const bytes = await applyMutations(corpus, base, mutations)
      const t0 = performance.now()
      const o = await checkFrame(bytes, keyOf)
      maxMs = Math.max(maxMs, performance.now() - t0)
      const key = o.kind === 'undecodable' ? `undecodable:${o.code}` : o.kind === 'rejected' ? `rejected:${o.reason}` : o.kind === 'no-proof' ? `decoded:${o.type}` : o.kind
      outcomes[key] = (outcomes[key] ?? 0) + 1
      if (o.kind === 'accepted' && !honest.has(o.claims)) throw new Error(`accepted a frame claiming what no honest frame does: ${o.claims}`)
      // the mutants leave nothing behind: an honest frame still verifies
      if (++n % 97 === 0) {
        const h = await checkFrame(corpus.frames[n % corpus.frames.length]!, keyOf)
        if (h.kind !== 'accepted' && h.kind !== 'no-proof') throw new Error(`an honest frame no longer verifies: ${JSON.stringify(h)}`)
        honestRechecks++
      }
    }),
    { numRuns: runs, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), endOnFailure: true },
  )
  gc?.()
  return { runs, outcomes, maxMs, heapGrowth: process.memoryUsage().heapUsed - heap0, honestRechecks }
}

/**
 * Real frames off a dev-env PDS for the fuzz to mutate: every Malfestio record type with creates,
 * updates and deletes, other collections, a handle change, a deactivation and reactivation
 * (#identity, #account, #sync). Keys are the ones the PLC directory names; `keyOf` answers a DID a
 * mutation invented with a stranger's key (so its commits fail the signature, as they should).
 */
export async function buildFuzzCorpus(net: Devnet): Promise<{ corpus: Corpus; keys: Map<string, string>; keyOf: (did: string) => string }> {
  const accounts = await createAccounts(net, 2, 'fuzz')
  await seedMalfestio(net, accounts)
  await updateHandle(net, accounts[0]!.did, 'fuzz-renamed.test')
  await deactivate(net, accounts[1]!.did)
  await activate(net, accounts[1]!.did)
  const frames = await captureFrames(net.subscribeUrl, 0)
  const keys = new Map<string, string>()
  for (const a of accounts) keys.set(a.did, (await plcSigningKey(net, a.did))!)
  const cids = new Set<string>()
  for (const f of frames) {
    const e = eventOf(f)
    if (e.type === 'commit') {
      cids.add(e.commit)
      for (const o of e.ops) if (o.cid) cids.add(o.cid)
    }
  }
  const stranger = (await Secp256k1Keypair.create()).did()
  return { corpus: { frames, cids: [...cids] }, keys, keyOf: (did) => keys.get(did) ?? stranger }
}
