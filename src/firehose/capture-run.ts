/**
 * Capture files in use: `captureToFile` records the frames an upstream sends, byte for byte, and
 * `playCaptureFile` hands a capture's frames to a consumer under the same contract as the network
 * (`onFrame(frame, bytes)`, one at a time, awaited), so a replay runs through the same pipeline.
 */
import { open } from 'node:fs/promises'
import { decode, decodeFirst, fromBytes, isBytes } from '@atcute/cbor'
import { CaptureFormatError, createCaptureWriter, openCapture, type CaptureHeader } from './capture.ts'
import type { Frame } from './events.ts'
import { decodeFrame, FrameDecodeError } from './frames.ts'
import { runSubscription, type ConnectionState } from './subscription.ts'
import { encodeMessageFrame } from './wire.ts'

/**
 * Message type of a recorded upstream answer inside a capture. No firehose sends it; a reader that
 * does not know it skips it as an unknown type.
 */
export const RECORDED_ANSWER_TYPE = '#x-malfestio-mirror-answer'

/** The upstream queries a mirroring run records (the ones whose answers change over time). */
export type RecordedMethod = 'com.atproto.sync.getRepo' | 'com.atproto.sync.getRepoStatus'

/** What the upstream answered to one query during the captured run: the body's bytes, or the error. */
export interface RecordedAnswer {
  method: RecordedMethod
  did: string
  /** when it was asked */
  at: string
  result?: Uint8Array
  error?: { message: string; upstreamErrors: string[] }
}

/** Encodes a recorded answer as a capture entry. */
export function encodeRecordedAnswer(r: RecordedAnswer): Uint8Array {
  return encodeMessageFrame(RECORDED_ANSWER_TYPE, { method: r.method, did: r.did, at: r.at, result: r.result, error: r.error })
}

/** The message type of an entry, from its header alone (no body decoding; undefined if unreadable). */
function entryType(bytes: Uint8Array): string | undefined {
  try {
    const [header] = decodeFirst(bytes) as [{ t?: unknown }, Uint8Array]
    return typeof header?.t === 'string' ? header.t : undefined
  } catch {
    return undefined
  }
}

const METHODS: readonly string[] = ['com.atproto.sync.getRepo', 'com.atproto.sync.getRepoStatus'] satisfies RecordedMethod[]

function decodeRecordedAnswer(bytes: Uint8Array): RecordedAnswer {
  const [, rest] = decodeFirst(bytes)
  const body = decode(rest) as Record<string, unknown>
  const { method, did, at } = body
  if (typeof method !== 'string' || !METHODS.includes(method)) throw new Error(`unknown method ${String(method)}`)
  if (typeof did !== 'string' || typeof at !== 'string') throw new Error('no did/at')
  const base = { method: method as RecordedMethod, did, at }
  if (isBytes(body.result)) return { ...base, result: fromBytes(body.result) }
  const e = body.error as { message?: unknown; upstreamErrors?: unknown } | undefined
  if (e && typeof e.message === 'string' && Array.isArray(e.upstreamErrors)) {
    return { ...base, error: { message: e.message, upstreamErrors: e.upstreamErrors.filter((x): x is string => typeof x === 'string') } }
  }
  throw new Error('holds neither a result nor an error')
}

/** The recorded answers of a capture, handed out per (method, DID) in the order they were recorded. */
export interface RecordedAnswers {
  /** how many answers the file holds */
  readonly size: number
  /** the next unused answer, or undefined when the file holds no more for this query */
  take(method: RecordedMethod, did: string): Promise<RecordedAnswer | undefined>
  close(): Promise<void>
}

/**
 * Indexes the recorded answers of a capture (one pass, offsets only; bodies are read when taken),
 * so a replay can ask what the upstream answered at capture time.
 * @throws {CaptureFormatError} `bad-recording` for an answer entry that does not decode, or as
 *   `openCapture` does; a damaged tail ends the index quietly (the replay reports it after the frames before it)
 */
export async function indexRecordedAnswers(path: string): Promise<RecordedAnswers> {
  const offsets = new Map<string, number[]>()
  let size = 0
  const reader = await openCapture(path)
  try {
    for await (const { offset, bytes, index } of reader.frames()) {
      if (entryType(bytes) !== RECORDED_ANSWER_TYPE) continue
      let r: RecordedAnswer
      try {
        r = decodeRecordedAnswer(bytes)
      } catch (err) {
        throw new CaptureFormatError('bad-recording', `${path}: recorded answer #${index} at byte ${offset}: ${(err as Error).message}`, offset, { cause: err })
      }
      const key = `${r.method} ${r.did}`
      const list = offsets.get(key) ?? []
      list.push(offset)
      offsets.set(key, list)
      size++
    }
  } catch (err) {
    if (!(err instanceof CaptureFormatError) || err.code === 'bad-recording') throw err
  } finally {
    await reader.close()
  }
  const fh = size ? await open(path, 'r') : undefined
  return {
    size,
    async take(method, did) {
      const at = offsets.get(`${method} ${did}`)?.shift()
      if (at === undefined || !fh) return undefined
      const len = Buffer.alloc(4)
      await fh.read(len, 0, 4, at)
      const bytes = Buffer.alloc(len.readUInt32BE(0))
      await fh.read(bytes, 0, bytes.byteLength, at + 4)
      return decodeRecordedAnswer(bytes)
    },
    close: async () => {
      await fh?.close()
    },
  }
}

export interface CaptureProgress {
  frames: number
  bytes: number
  /** message frames skipped because a reconnect re-sent them (seq at or below the last written) */
  duplicates: number
  firstSeq: number | null
  lastSeq: number | null
  connection: ConnectionState | { state: 'idle' }
  framesPerSec: number
  done: boolean
}

export interface CaptureOptions {
  /** relay or PDS: ws(s):// or http(s):// */
  service: string
  path: string
  /** start after this seq (`?cursor=`); undefined = the live tail */
  from?: number
  /** stop once this seq has been written */
  to?: number
  /** stop after this much silence (a quiet local PDS) */
  idleMs?: number
  stallMs?: number
  overwrite?: boolean
  signal?: AbortSignal
  /** extra header fields */
  meta?: Record<string, unknown>
  /** about once a second and at the end */
  onProgress?: (p: CaptureProgress) => void
}

export interface CaptureResult {
  path: string
  header: CaptureHeader
  frames: number
  bytes: number
  duplicates: number
  firstSeq: number | null
  lastSeq: number | null
  stoppedBy: 'signal' | 'to' | 'idle'
}

/** Seq of a frame, when it has one (#info and error frames do not). */
function frameSeq(frame: Frame): number | undefined {
  if (frame.kind === 'message') return 'seq' in frame.event ? frame.event.seq : undefined
  if (frame.kind === 'unknown') return frame.seq
  return undefined
}

/**
 * Subscribes to `service` and appends every frame as received to a new capture file, until `to`,
 * `idleMs` of silence, or `signal`. Reconnects resume after the last written seq, and frames a
 * server re-sends are not written twice. Undecodable frames are not written: the subscription drops
 * the connection on them and resumes from the cursor, as the mirror does.
 * @throws {CaptureFormatError} `exists` when the file exists and `overwrite` is not set
 */
export async function captureToFile(opts: CaptureOptions): Promise<CaptureResult> {
  const writer = await createCaptureWriter(opts.path, {
    source: opts.service,
    cursor: opts.from ?? null,
    overwrite: opts.overwrite,
    meta: { ...opts.meta, ...(opts.to !== undefined ? { to: opts.to } : {}) },
  })
  const stop = new AbortController()
  const onAbort = () => stop.abort()
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  if (opts.signal?.aborted) stop.abort()

  let stoppedBy: CaptureResult['stoppedBy'] = 'signal'
  let firstSeq: number | null = null
  let lastSeq: number | null = null
  let duplicates = 0
  let connection: CaptureProgress['connection'] = { state: 'idle' }
  let lastFrameAt = Date.now()
  let lastCount = 0
  let lastTick = Date.now()
  const report = (done: boolean) => {
    const now = Date.now()
    const framesPerSec = ((writer.frames - lastCount) * 1000) / Math.max(1, now - lastTick)
    lastCount = writer.frames
    lastTick = now
    opts.onProgress?.({ frames: writer.frames, bytes: writer.bytes, duplicates, firstSeq, lastSeq, connection, framesPerSec, done })
  }
  const ticker = setInterval(() => {
    report(false)
    if (opts.idleMs !== undefined && Date.now() - lastFrameAt > opts.idleMs) {
      stoppedBy = 'idle'
      stop.abort()
    }
  }, Math.min(1000, opts.idleMs ?? 1000))

  try {
    await runSubscription({
      service: opts.service,
      getCursor: () => lastSeq ?? opts.from,
      stallMs: opts.stallMs,
      signal: stop.signal,
      onState: (s) => {
        connection = s
      },
      onFrame: async (frame, bytes) => {
        lastFrameAt = Date.now()
        const seq = frameSeq(frame)
        if (seq !== undefined) {
          if (opts.to !== undefined && seq > opts.to) {
            stoppedBy = 'to'
            stop.abort()
            return
          }
          if (lastSeq !== null && seq <= lastSeq) {
            duplicates++
            return
          }
        }
        await writer.write(bytes)
        if (seq !== undefined) {
          firstSeq ??= seq
          lastSeq = seq
          if (opts.to !== undefined && seq >= opts.to) {
            stoppedBy = 'to'
            stop.abort()
          }
        }
      },
    })
  } finally {
    clearInterval(ticker)
    opts.signal?.removeEventListener('abort', onAbort)
    await writer.close()
    report(true)
  }
  return { path: opts.path, header: writer.header, frames: writer.frames, bytes: writer.bytes, duplicates, firstSeq, lastSeq, stoppedBy }
}

export interface PlayOptions {
  path: string
  signal?: AbortSignal
  /** called once the header has been read, before the first frame */
  onHeader?: (header: CaptureHeader) => void
  /** awaited, one frame at a time, like the subscription's */
  onFrame: (frame: Frame, bytes: Uint8Array) => void | Promise<void>
}

/**
 * Feeds the frames of a capture file to `onFrame` in order until the end (or `signal`).
 * Frames before a defect are delivered; then the defect throws.
 * @throws {CaptureFormatError} for a file that is not a capture, is truncated or garbled, or holds a
 *   frame that does not decode (code `bad-frame`, naming the frame's index and byte offset)
 */
export async function playCaptureFile(opts: PlayOptions): Promise<{ header: CaptureHeader; frames: number }> {
  const reader = await openCapture(opts.path)
  let delivered = 0
  try {
    opts.onHeader?.(reader.header)
    for await (const { index, offset, bytes } of reader.frames()) {
      if (opts.signal?.aborted) break
      // recorded upstream answers are not stream frames: the replay's resyncs read them (indexRecordedAnswers)
      if (entryType(bytes) === RECORDED_ANSWER_TYPE) continue
      let frame: Frame
      try {
        frame = decodeFrame(bytes)
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err
        throw new CaptureFormatError('bad-frame', `${opts.path}: frame #${index} at byte ${offset} does not decode (${err.code}: ${err.message})`, offset, { cause: err })
      }
      await opts.onFrame(frame, bytes)
      delivered++
    }
  } finally {
    await reader.close()
  }
  return { header: reader.header, frames: delivered }
}
