/** TIDs (revs) are base32-sortable 13-char strings; their top bits are a microsecond timestamp. */
const ALPHABET = '234567abcdefghijklmnopqrstuvwxyz'
const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/

export const isTid = (s: string): boolean => TID_RE.test(s)

/** Milliseconds since epoch encoded in a TID, or null when the string is not a TID. */
export function tidTimestampMs(tid: string): number | null {
  if (!isTid(tid)) return null
  let n = 0n
  for (const ch of tid) n = n * 32n + BigInt(ALPHABET.indexOf(ch))
  return Number((n >> 10n) / 1000n)
}
