/**
 * A DID's identity as the store last proved it, to start from after a restart instead of fetching
 * and verifying its PLC log again.
 *
 * A mirror that starts meets every DID anew: each was one request pair at the directory and one log
 * verification on the main thread (about 1.4 ms of CPU each in the bench, where the first seconds of
 * a pass over 1 880 DIDs were spent on little else). The store already holds what that work proved:
 * the identity row (key, handle, PDS, last operation) and the key history of the verified log.
 *
 * Only a row that came from a verified log is taken, whole, and only while it is younger than the
 * allowed age (indigo's identity cache keeps a hit for 24 hours; so does the default here). The
 * rules that keep a stale row from accepting what a fresh one would refuse are the resolver's own:
 * an #identity event or a signature that fails with the stored keys forces a fetch.
 */
import type { Db } from '../store/db.ts'
import { getIdentity, getKeyHistory } from '../store/identities.ts'
import type { ResolvedIdentity } from '../verify/identity.ts'

/**
 * The stored identity of `did` when the store proved it from a verified log less than `maxAgeMs`
 * ago, with the history's last key still current and the directory's document agreeing; else
 * undefined (and the resolver fetches).
 */
export function storedIdentity(db: Db, did: string, maxAgeMs: number, now = Date.now()): ResolvedIdentity | undefined {
  if (!(maxAgeMs > 0)) return undefined
  const row = getIdentity(db, did)
  // a row from the directory's document (--trust-plc-directory), from did:web, or written before the
  // log was kept proves no key history; a recorded mismatch keeps no copy of what was served
  if (!row || row.keySource !== 'plc-log' || !row.plcLastOp || row.docMismatch !== null || !row.signingKey) return undefined
  const resolvedAt = Date.parse(row.resolvedAt)
  // a time ahead of this clock is no age at all: not trusted either
  if (!(now - resolvedAt <= maxAgeMs && resolvedAt <= now)) return undefined
  const keys = getKeyHistory(db, did)
  const current = keys.at(-1)
  if (!current || current.endedBy !== null || current.signingKey !== row.signingKey) return undefined
  return {
    did,
    signingKey: row.signingKey,
    ...(row.handle ? { handle: row.handle } : {}),
    ...(row.pds ? { pds: row.pds } : {}),
    doc: row.doc,
    resolvedAt,
    source: 'plc-log',
    log: { keys, signingKey: row.signingKey, lastOp: { cid: row.plcLastOp } },
  }
}
