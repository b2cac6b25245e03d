/** Protocol limits from the atproto event-stream and sync specs. */
export const LIMITS = {
  /** a whole frame (header + body) */
  maxFrameBytes: 5_000_000,
  /** the `blocks` CAR of one #commit */
  maxBlocksBytes: 2_000_000,
  /** ops in one #commit */
  maxOps: 200,
  /** one record block */
  maxRecordBytes: 1_000_000,
} as const
