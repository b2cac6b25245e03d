/**
 * The stream clock: which event time belongs to the cursor. Events carry the upstream's `time`;
 * the cursor moves in batches behind them, so the clock keeps (seq, time) of the events still above
 * the cursor and answers "how old is the newest event the mirror has durably finished".
 */

export interface StreamClock {
  /** an event entered the pipeline */
  saw(seq: number, time: string): void
  /** the cursor moved to `seq`: returns the time (ms) of the newest seen event at or below it */
  settle(seq: number): number | null
  /** time (ms) of the newest event received */
  lastEventTime(): number | null
  /** time (ms) of the newest event at or below the settled cursor */
  cursorEventTime(): number | null
}

/** Entries kept above the cursor before they are thinned (one slow repo can hold the cursor back). */
const MAX_ENTRIES = 20_000

export function createStreamClock(): StreamClock {
  // parallel arrays in seq order; `head` is the first live index (popped entries are skipped, then compacted)
  let seqs: number[] = []
  let times: number[] = []
  let head = 0
  let last: number | null = null
  let atCursor: number | null = null
  return {
    saw(seq, time) {
      const t = Date.parse(time)
      if (!Number.isFinite(t)) return
      last = t
      if (seqs.length > head && seq <= seqs[seqs.length - 1]!) return
      seqs.push(seq)
      times.push(t)
      if (seqs.length - head > MAX_ENTRIES) {
        // keep every other entry: a later lookup then answers with a slightly older time, so the lag
        // it reports errs on the high side, never the low side
        const s: number[] = []
        const ts: number[] = []
        for (let i = head; i < seqs.length; i += 2) {
          s.push(seqs[i]!)
          ts.push(times[i]!)
        }
        seqs = s
        times = ts
        head = 0
      }
    },
    settle(seq) {
      while (head < seqs.length && seqs[head]! <= seq) {
        atCursor = times[head]!
        head++
      }
      if (head > 1024 && head * 2 > seqs.length) {
        seqs = seqs.slice(head)
        times = times.slice(head)
        head = 0
      }
      return atCursor
    },
    lastEventTime: () => last,
    cursorEventTime: () => atCursor,
  }
}
