/**
 * Which of a DID's signing keys (from its verified PLC log) may have signed an event at a given point
 * of the stream. Pure: the mirror keeps the per-DID "key floor" and asks these functions.
 *
 * The rule (README, "Keys across rotations"):
 * - keys come only from the verified log, as epochs k0..kn (a key and the operations that began and
 *   ended its period);
 * - per DID the mirror keeps a floor in stream order: the #identity event after which the log names
 *   k_j moves the floor to j, and so does any event that verifies with k_j; a key below the floor is
 *   never accepted again for later events;
 * - an event is accepted with k_i only if i ≥ floor and the event's `time` lies in k_i's period
 *   (widened by KEY_TIME_SKEW_MS on both sides, for clocks that disagree).
 * `time` and the log's `createdAt` are claims (of the relay/PDS and of the directory): the floor, which
 * follows the stream's order, is what refuses an old key after a rotation the stream has shown; the
 * time window only narrows what is accepted where the stream showed nothing.
 */
import type { KeyEpoch } from './plc-log.ts'

/** How far an event's time may lie outside its key's period (clocks of PDS and directory differ). */
export const KEY_TIME_SKEW_MS = 5 * 60_000
/**
 * How far after an #identity event's time a PLC operation may be dated and still count as seen by it.
 * Zero on purpose: a PDS sequences #identity after the directory accepted the operation, so with sane
 * clocks the operation is older than the event; any slack here would let a handle change's #identity
 * claim a rotation made moments later and refuse the honest commits signed in between (measured on
 * dev-env: handle change and rotation 0.8 s apart). A PDS clock running behind only means the floor
 * moves at the next event signed with the new key (#sync or commit) instead.
 */
export const IDENTITY_SKEW_MS = 0

const at = (iso: string): number => Date.parse(iso)

/**
 * The epochs whose key may have signed an event with this `time`, at or above the floor, newest
 * first. An unreadable time allows only the current key.
 */
export function epochsInForce(keys: readonly KeyEpoch[], floor: number, time: string): KeyEpoch[] {
  const t = at(time)
  const out: KeyEpoch[] = []
  for (let i = keys.length - 1; i >= 0; i--) {
    const e = keys[i]!
    if (e.index < floor) break
    if (Number.isNaN(t)) {
      if (e.endedBy === null) out.push(e)
      continue
    }
    const from = at(e.op.createdAt) - KEY_TIME_SKEW_MS
    const to = e.endedBy ? at(e.endedBy.createdAt) + KEY_TIME_SKEW_MS : Infinity
    if (t >= from && t <= to) out.push(e)
  }
  return out
}

/**
 * The epoch in force at an #identity event: the newest one begun by an operation dated no later than
 * the event (plus IDENTITY_SKEW_MS). Undefined when the event predates every key.
 */
export function epochAtIdentityEvent(keys: readonly KeyEpoch[], time: string): KeyEpoch | undefined {
  const t = at(time)
  if (Number.isNaN(t)) return undefined
  let found: KeyEpoch | undefined
  for (const e of keys) if (at(e.op.createdAt) <= t + IDENTITY_SKEW_MS) found = e
  return found
}

/** Distinct keys in order of first appearance (epochs of one key need one signature check). */
export function distinctKeys(epochs: readonly KeyEpoch[]): KeyEpoch[] {
  const seen = new Set<string>()
  return epochs.filter((e) => !seen.has(e.signingKey) && seen.add(e.signingKey))
}
