/**
 * Running the mirror against a live upstream: the subscription feeds the mirror, a progress line
 * reports, and the run ends on a signal, on `--to`, or after `--idle-ms` of silence (replay).
 */
import type { Frame } from '../firehose/events.ts'
import { runSubscription, type ConnectionState } from '../firehose/subscription.ts'
import { openDb } from '../store/db.ts'
import type { MirrorConfig } from './config.ts'
import { createMirror, type Mirror, type MirrorHooks, type MirrorStats } from './mirror.ts'

export interface RunOptions {
  signal?: AbortSignal
  /** metrics observers, passed to the mirror */
  hooks?: MirrorHooks
  /** called with the mirror once it exists (e.g. to serve reads next to it) */
  onMirror?: (mirror: Mirror) => void
  /** called about once a second and at the end */
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
  stoppedBy: 'signal' | 'to' | 'idle'
}

/** Runs sync or replay until stopped; the cursor is saved on every stop. */
export async function runMirror(config: MirrorConfig, opts: RunOptions = {}): Promise<RunResult> {
  const db = openDb(config.dbPath)
  const mirror = createMirror(db, config, opts.hooks)
  opts.onMirror?.(mirror)
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

  let connection: Progress['connection'] = { state: 'idle' }
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
    if (config.idleMs !== undefined && Date.now() - lastFrameAt > config.idleMs && mirror.stats().inFlight === 0) {
      stoppedBy = 'idle'
      stop.abort()
    }
  }, Math.min(1000, config.idleMs ?? 1000))

  try {
    await runSubscription({
      service: config.service,
      getCursor: () => mirror.position(),
      stallMs: config.stallMs,
      maxInitialFailures: config.connectAttempts > 0 ? config.connectAttempts : Infinity,
      signal: stop.signal,
      onState: (s) => {
        connection = s
      },
      onFrame: async (frame: Frame) => {
        lastFrameAt = Date.now()
        if (config.stopAtSeq !== undefined && frame.kind === 'message' && 'seq' in frame.event && frame.event.seq > config.stopAtSeq) {
          stoppedBy = 'to'
          stop.abort()
          return
        }
        await mirror.handleFrame(frame)
        if (config.stopAtSeq !== undefined && (mirror.stats().lastSeq ?? -1) >= config.stopAtSeq) {
          stoppedBy = 'to'
          stop.abort()
        }
      },
    })
    await mirror.drain()
  } finally {
    clearInterval(ticker)
    opts.signal?.removeEventListener('abort', onAbort)
    await mirror.close()
    report(true)
    db.close()
  }
  return { stats: mirror.stats(), stoppedBy }
}
