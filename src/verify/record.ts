/**
 * Reading a proven record block as a value. The block's hash is already checked (it is the CID the
 * signed MST names), but its bytes are still whatever the author's PDS chose to sign: they may not
 * be DAG-CBOR at all, may not be a map, or may nest containers a million levels deep (which would
 * overflow the stack of every recursive walker downstream: JSON.stringify, the lexicon validator).
 * This turns any such block into a clear "not a record" answer instead of an exception.
 */
import { decode } from '@atcute/cbor'

/** Deepest nesting of maps and arrays accepted in a record value (real records nest a few levels). */
export const MAX_RECORD_DEPTH = 128

export type DecodedRecord = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string }

/** Decodes a record block; never throws. */
export function decodeRecord(bytes: Uint8Array, maxDepth = MAX_RECORD_DEPTH): DecodedRecord {
  let value: unknown
  try {
    value = decode(bytes) // @atcute/cbor decodes iteratively: no recursion on hostile nesting
  } catch (err) {
    return { ok: false, reason: `record block is not DAG-CBOR: ${(err as Error).message}` }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'record block is not a map' }
  }
  const depth = nestingDepth(value, maxDepth)
  if (depth > maxDepth) return { ok: false, reason: `record nests deeper than ${maxDepth} levels` }
  return { ok: true, value: value as Record<string, unknown> }
}

/** Depth of nested plain maps/arrays, counted without recursion; stops counting past `limit`. */
function nestingDepth(root: unknown, limit: number): number {
  let max = 0
  const stack: [unknown, number][] = [[root, 1]]
  while (stack.length) {
    const [node, depth] = stack.pop()!
    if (depth > max) max = depth
    if (max > limit) return max
    const children = Array.isArray(node) ? node : isPlainMap(node) ? Object.values(node) : []
    for (const child of children) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
  }
  return max
}

/** A decoded CBOR map (not a CID link or bytes wrapper, which are leaves). */
const isPlainMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype
