/**
 * Verdicts of the fast path and the reference path on the same frames, compared one by one.
 */
import type { CommitEvent } from '../../src/firehose/events.ts'
import { commitScope, MALFESTIO_COLLECTIONS } from '../../src/mirror/config.ts'
import { verifyCommit } from '../../src/verify/commit.ts'
import { VerificationError } from '../../src/verify/reasons.ts'
import { referenceVerdict, type Verdict } from './reference-verify.ts'
import { EXPECTED, tamper, TAMPERS, type TamperKind } from './tamper.ts'

/** the mirror's default scope, as its verification threads build it */
export const malfestioScope = commitScope(MALFESTIO_COLLECTIONS)
export const inMalfestioScope = malfestioScope.inScope

/** The fast path's verdict: what the mirror's verifyCommit says. */
export async function fastVerdict(evt: CommitEvent, key: string): Promise<Verdict> {
  try {
    await verifyCommit(evt, key, malfestioScope)
    return 'ok'
  } catch (err) {
    if (err instanceof VerificationError) return err.reason
    throw err
  }
}

export interface Comparison {
  seq: number
  tamper: TamperKind | null
  fast: Verdict
  reference: Verdict
  /** the verdict the lie must get, when certain */
  expected?: Verdict
}

export interface CompareTally {
  frames: number
  /** honest frames both paths accepted */
  honestOk: number
  tampered: number
  agree: number
  disagree: number
  /** frames (honest or tampered) whose reference verdict is not what the lie must get */
  unexpected: number
  byVerdict: Record<string, number>
  examples: Comparison[]
}

export const newTally = (): CompareTally => ({ frames: 0, honestOk: 0, tampered: 0, agree: 0, disagree: 0, unexpected: 0, byVerdict: {}, examples: [] })

function record(t: CompareTally, c: Comparison): void {
  const same = c.fast === c.reference
  if (same) t.agree++
  else t.disagree++
  const unexpected = c.expected !== undefined && c.reference !== c.expected
  if (unexpected) t.unexpected++
  t.byVerdict[c.reference] = (t.byVerdict[c.reference] ?? 0) + 1
  if ((!same || unexpected) && t.examples.length < 10) t.examples.push(c)
}

/**
 * Compares both paths on `evt` and, when `tamperKind` is given, on one forged variant of it.
 * An honest frame of the bench stream must be 'ok'.
 */
export async function compareFrame(
  t: CompareTally,
  evt: CommitEvent,
  key: string,
  other: { did: string; key: string },
  tamperKind: TamperKind | null,
): Promise<void> {
  t.frames++
  const honest: Comparison = { seq: evt.seq, tamper: null, fast: await fastVerdict(evt, key), reference: await referenceVerdict(evt, key, inMalfestioScope), expected: 'ok' }
  record(t, honest)
  if (honest.fast === 'ok' && honest.reference === 'ok') t.honestOk++
  if (!tamperKind) return
  t.tampered++
  const forged = await tamper(tamperKind, evt, key, other)
  const k = forged.key ?? key
  record(t, {
    seq: evt.seq,
    tamper: tamperKind,
    fast: await fastVerdict(forged.evt, k),
    reference: await referenceVerdict(forged.evt, k, inMalfestioScope),
    expected: EXPECTED[tamperKind],
  })
}

/** Which lie (if any) the i-th frame of a stream gets: every `every`-th frame, kinds in turn. */
export const tamperFor = (i: number, every: number): TamperKind | null =>
  every > 0 && i % every === every - 1 ? TAMPERS[Math.floor(i / every) % TAMPERS.length]! : null
