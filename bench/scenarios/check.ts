/**
 * Scenario: the correctness guard over the whole stream — fast path and reference path must give
 * the same verdict on every frame and on a forged variant of every `tamperEvery`-th frame.
 */
import { openCapture } from '../../src/firehose/capture.ts'
import { decodeFrame } from '../../src/firehose/frames.ts'
import { childMain } from '../lib/child.ts'
import { compareFrame, newTally, tamperFor, type CompareTally } from '../lib/verdicts.ts'
import { loadStreamDir } from '../stream/cache.ts'

export interface CheckInput {
  streamDir: string
  tamperEvery: number
}

export type CheckResult = CompareTally & { elapsedSec: number }

childMain<CheckInput, CheckResult>(async (input, progress) => {
  const stream = loadStreamDir(input.streamDir)
  const keys = new Map(stream.accounts.map((a) => [a.did, a.didKey]))
  const tally = newTally()
  const reader = await openCapture(stream.capturePath)
  const t0 = performance.now()
  let last = 0
  try {
    for await (const f of reader.frames()) {
      const frame = decodeFrame(f.bytes)
      if (frame.kind !== 'message' || frame.event.type !== 'commit') throw new Error(`frame ${f.index} is not a #commit`)
      const evt = frame.event
      const other = stream.accounts[(f.index * 7919) % stream.accounts.length]!
      const o = other.did === evt.repo ? stream.accounts[(f.index * 7919 + 1) % stream.accounts.length]! : other
      await compareFrame(tally, evt, keys.get(evt.repo)!, { did: o.did, key: o.didKey }, tamperFor(f.index, input.tamperEvery))
      if (Date.now() - last > 2000) {
        last = Date.now()
        progress(`check: ${tally.frames}/${stream.meta.frames} frames, ${tally.disagree} disagreements`)
      }
    }
  } finally {
    await reader.close()
  }
  return { ...tally, elapsedSec: (performance.now() - t0) / 1000 }
})
