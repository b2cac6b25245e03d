/**
 * Scenario: in-process figures on one core, without socket or SQLite — full frame decoding, the
 * pass-through decision for an out-of-scope frame, and decode + verification of a sample of commits.
 * Frames are read from disk in between; only the measured calls are timed.
 */
import { openCapture } from '../../src/firehose/capture.ts'
import { decodeFrame, peekCommit } from '../../src/firehose/frames.ts'
import { collectionMatcher } from '../../src/mirror/config.ts'
import { verifyCommit } from '../../src/verify/commit.ts'
import { childMain } from '../lib/child.ts'
import { malfestioScope } from '../lib/verdicts.ts'
import { loadStreamDir } from '../stream/cache.ts'

export interface InprocInput {
  streamDir: string
  /** commits verified (every k-th frame of the stream) */
  verifySample: number
}

export interface InprocResult {
  decodeFramesPerSec: number
  passthroughFramesPerSec: number
  verifyCommitsPerSec: number
  verified: number
}

childMain<InprocInput, InprocResult>(async (input, progress) => {
  const stream = loadStreamDir(input.streamDir)
  const keys = new Map(stream.accounts.map((a) => [a.did, a.didKey]))
  const nothing = collectionMatcher(['org.example.nothing'])

  const frames = async (fn: (bytes: Uint8Array, index: number) => Promise<void> | void) => {
    const reader = await openCapture(stream.capturePath)
    try {
      for await (const f of reader.frames()) await fn(f.bytes, f.index)
    } finally {
      await reader.close()
    }
  }

  // warm up the code paths once
  let n = 0
  await frames((bytes) => {
    if (n++ < 2000) decodeFrame(bytes)
  })

  let decodeMs = 0
  await frames((bytes) => {
    const t = performance.now()
    decodeFrame(bytes)
    decodeMs += performance.now() - t
  })
  progress(`in-process: full decode ${((stream.meta.frames / decodeMs) * 1000).toFixed(0)} frames/s`)

  // what the mirror reads of an out-of-scope commit before passing it over (mirror.passThrough)
  let passMs = 0
  let inScope = 0
  await frames((bytes) => {
    const t = performance.now()
    const p = peekCommit(bytes)
    if (!p || p.paths.some((path) => nothing(path.slice(0, path.indexOf('/'))))) inScope++
    passMs += performance.now() - t
  })
  if (inScope) throw new Error('pass-through: a frame was in scope or unreadable')
  progress(`in-process: pass-through ${((stream.meta.frames / passMs) * 1000).toFixed(0)} frames/s`)

  const every = Math.max(1, Math.floor(stream.meta.frames / input.verifySample))
  let verifyMs = 0
  let verified = 0
  await frames(async (bytes, index) => {
    if (index % every !== 0) return
    const t = performance.now()
    const f = decodeFrame(bytes)
    if (f.kind !== 'message' || f.event.type !== 'commit') throw new Error('not a commit')
    await verifyCommit(f.event, keys.get(f.event.repo)!, malfestioScope)
    verifyMs += performance.now() - t
    verified++
  })
  progress(`in-process: verify ${((verified / verifyMs) * 1000).toFixed(0)} commits/s`)

  return {
    decodeFramesPerSec: (stream.meta.frames / decodeMs) * 1000,
    passthroughFramesPerSec: (stream.meta.frames / passMs) * 1000,
    verifyCommitsPerSec: (verified / verifyMs) * 1000,
    verified,
  }
})
