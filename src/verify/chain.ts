/**
 * The rev/since chain of a repo (sync 1.1): whether a proven commit follows what the mirror holds.
 */
import { tidTimestampMs } from './tid.ts'

export interface RepoHead {
  rev: string
  dataCid: string
}

export type ChainVerdict =
  | { kind: 'apply' }
  | { kind: 'stale' }
  | { kind: 'future'; message: string }
  | { kind: 'break'; message: string }

/** How far a rev may run ahead of this machine's clock. */
export const MAX_FUTURE_MS = 5 * 60_000

/**
 * Decides how a commit relates to the stored head: older or equal rev → stale (a no-op);
 * since/prevData not matching the stored rev/data → break (the repo is desynchronized).
 * `stored` null means the repo is new to the mirror: only a genesis commit (since null) applies.
 */
export function checkChain(
  stored: RepoHead | null,
  commit: { rev: string; since: string | null; prevData: string | null },
  nowMs = Date.now(),
): ChainVerdict {
  const ts = tidTimestampMs(commit.rev)
  if (ts !== null && ts > nowMs + MAX_FUTURE_MS) {
    return { kind: 'future', message: `rev ${commit.rev} is ${Math.round((ts - nowMs) / 1000)} s in the future` }
  }
  if (!stored) {
    if (commit.since === null) return { kind: 'apply' }
    return { kind: 'break', message: `first sight of the repo at rev ${commit.rev} (since ${commit.since}): earlier state unknown` }
  }
  if (commit.rev <= stored.rev) return { kind: 'stale' }
  if (commit.since !== stored.rev) {
    return { kind: 'break', message: `since ${commit.since ?? 'null'} is not the stored rev ${stored.rev}` }
  }
  if (commit.prevData !== null && commit.prevData !== stored.dataCid) {
    return { kind: 'break', message: `prevData ${commit.prevData} is not the stored data ${stored.dataCid}` }
  }
  return { kind: 'apply' }
}
