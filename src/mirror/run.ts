/**
 * Running the mirror: the subscription (or a capture file) feeds the mirror, a progress line
 * reports, and the run ends on a signal, on `--to`, after `--idle-ms` of silence (replay), or at the
 * end of the capture file.
 */
import { playCaptureFile } from '../firehose/capture-run.ts'
import type { Frame } from '../firehose/events.ts'
import { runSubscription, type ConnectionState } from '../firehose/subscription.ts'
import { getCursor, setCursorEventTime } from '../store/cursor.ts'
import { openDb } from '../store/db.ts'
import { createStreamClock, type StreamClock } from './clock.ts'
import type { MirrorConfig } from './config.ts'
import { createMirror, type Mirror, type MirrorDeps, type MirrorHooks, type MirrorStats } from './mirror.ts'
import { recordedUpstream, startRecording, type RecordedUpstream, type Recorder } from './recording.ts'

export interface RunOptions {
  signal?: AbortSignal
  /** metrics observers, passed to the mirror */
  hooks?: MirrorHooks
  /** called with the mirror once it exists (e.g. to serve reads next to it) */
  onMirror?: (mirror: Mirror, run: RunView) => void
  /** called about once a second, at every connection state change, and at the end */
  onProgress?: (p: Progress) => void
}

export interface Progress {
  stats: MirrorStats
  connection: ConnectionState | { state: 'idle' }
  eventsPerSec: number
  done: boolean
}

export interface RunResult {
  stats: MirrorStats
  /** `sync --capture`: frames and answers written; `replay --file`: recorded upstream answers used */
  capture?: { frames: number; bytes: number } | { held: number; served: number; online: number }
  /** `end`: the capture file has no more frames */
  stoppedBy: 'signal' | 'to' | 'idle' | 'end'
}

/** What a run knows beyond the mirror: the connection and the stream clock (for metrics, /health). */
export interface RunView {
  connection(): Progress['connection']
  clock: StreamClock
}

/** Runs sync or replay until stopped; the cursor is saved on every stop. */
export async function runMirror(config: MirrorConfig, opts: RunOptions = {}): Promise<RunResult> {
  const db = openDb(config.dbPath)
  let recorder: Recorder | undefined
  let recorded: RecordedUpstream | undefined
  try {
    if (config.captureFile !== undefined) recorded = await recordedUpstream(config.captureFile)
    if (config.captureTo !== undefined) {
      recorder = await startRecording(config.captureTo, {
        source: config.service,
        cursor: config.cursor ?? getCursor(db, config.service) ?? null,
        overwrite: config.captureOverwrite,
      })
    }
  } catch (err) {
    db.close()
    throw err
  }
  const upstream = recorder ?? recorded
  const deps: MirrorDeps = upstream ? { fetchRepo: upstream.fetchRepo, fetchRepoStatus: upstream.fetchRepoStatus } : {}
  const clock = createStreamClock()
  let settled: number | undefined
  const hooks: MirrorHooks = {
    onCount: opts.hooks?.onCount,
    onFlush(ms, writes) {
      opts.hooks?.onFlush?.(ms, writes)
      // the event time of the new cursor, for lag: outside the batch (a lost write only ages /health)
      const cursor = mirror.cursor()
      if (cursor === undefined || cursor === settled) return
      const t = clock.settle(cursor)
      settled = cursor
      if (t !== null) {
        try {
          setCursorEventTime(db, config.service, cursor, new Date(t).toISOString())
        } catch {
          // a busy database: the next batch writes it
        }
      }
    },
  }
  const mirror = createMirror(db, config, hooks, deps)
  let connection: Progress['connection'] = { state: 'idle' }
  opts.onMirror?.(mirror, { connection: () => connection, clock })
  const stop = new AbortController()
  let stoppedBy: RunResult['stoppedBy'] = 'signal'
  // a user stop gives up waiting (on an unavailable resolver, on capacity): unfinished events stay
  // below the cursor and the next run does them. --to and --idle-ms stops drain everything instead.
  const onAbort = () => {
    mirror.stop()
    stop.abort()
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  if (opts.signal?.aborted) onAbort()

  let lastFrameAt = Date.now()
  let lastCount = 0
  let lastTick = Date.now()
  const report = (done: boolean) => {
    const stats = mirror.stats()
    const now = Date.now()
    const eventsPerSec = ((stats.received - lastCount) * 1000) / Math.max(1, now - lastTick)
    lastCount = stats.received
    lastTick = now
    opts.onProgress?.({ stats, connection, eventsPerSec, done })
  }
  const ticker = setInterval(() => {
    report(false)
    // silence counts only on an open connection: a relay that keeps failing is not "caught up"
    const idle = connection.state === 'connected' && Date.now() - lastFrameAt > (config.idleMs ?? Infinity)
    if (idle && mirror.stats().inFlight === 0) {
      stoppedBy = 'idle'
      stop.abort()
    }
  }, Math.min(1000, config.idleMs ?? 1000))

  const onFrame = async (frame: Frame, bytes: Uint8Array) => {
    lastFrameAt = Date.now()
    if (recorder) await recorder.frame(bytes)
    if (config.stopAtSeq !== undefined && frame.kind === 'message' && 'seq' in frame.event && frame.event.seq > config.stopAtSeq) {
      stoppedBy = 'to'
      stop.abort()
      return
    }
    if (frame.kind === 'message' && 'seq' in frame.event) clock.saw(frame.event.seq, frame.event.time)
    await mirror.handleFrame(frame)
    if (config.stopAtSeq !== undefined && (mirror.stats().lastSeq ?? -1) >= config.stopAtSeq) {
      stoppedBy = 'to'
      stop.abort()
    }
  }

  const passThrough = (bytes: Uint8Array): boolean => {
    const p = mirror.passThrough(bytes, config.stopAtSeq)
    if (!p) return false
    lastFrameAt = Date.now()
    clock.saw(p.seq, p.time)
    if (config.stopAtSeq !== undefined && p.seq >= config.stopAtSeq) {
      stoppedBy = 'to'
      stop.abort()
    }
    return true
  }

  try {
    if (config.captureFile !== undefined) {
      // the same pipeline as the network, fed from a file: one frame at a time, awaited
      connection = { state: 'connected', url: `file:${config.captureFile}` }
      await playCaptureFile({ path: config.captureFile, signal: stop.signal, onFrame })
      if (!stop.signal.aborted) stoppedBy = 'end'
    } else {
      await runSubscription({
        service: config.service,
        getCursor: () => mirror.position(),
        stallMs: config.stallMs,
        maxInitialFailures: config.connectAttempts > 0 ? config.connectAttempts : Infinity,
        signal: stop.signal,
        onState: (s) => {
          connection = s
          if (s.state === 'connected') lastFrameAt = Date.now()
          report(false) // a connection change is news: say it now, not at the next tick
        },
        onBadFrame: (err) => mirror.badFrame(err.code),
        // out-of-scope commits of untracked repos, taken from the raw bytes (not when recording: every frame is written)
        passThrough: recorder ? undefined : passThrough,
        onFrame,
      })
    }
    await mirror.drain()
  } finally {
    clearInterval(ticker)
    opts.signal?.removeEventListener('abort', onAbort)
    await mirror.close()
    report(true)
    db.close()
    await recorder?.close()
    await recorded?.close()
  }
  const capture = recorder ? { frames: recorder.writer.frames, bytes: recorder.writer.bytes } : recorded?.stats()
  return { stats: mirror.stats(), stoppedBy, ...(capture ? { capture } : {}) }
}
