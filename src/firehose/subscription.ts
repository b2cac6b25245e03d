/**
 * WebSocket client for `com.atproto.sync.subscribeRepos`. Knows the wire, nothing of trust:
 * it connects, decodes frames, hands them to `onFrame` strictly one at a time (pausing the socket
 * while the consumer works), and reconnects — with exponential backoff and jitter — from whatever
 * cursor `getCursor()` says, whenever the stream ends for any reason other than a fatal one.
 */
import WebSocket from 'ws'
import type { ClientOptions, RawData } from 'ws'
import type { Frame } from './events.ts'
import { decodeFrame, FrameDecodeError } from './frames.ts'
import { LIMITS } from './limits.ts'

export const SUBSCRIBE_REPOS_PATH = '/xrpc/com.atproto.sync.subscribeRepos'

export type ConnectionState =
  | { state: 'connecting'; url: string; attempt: number }
  | { state: 'connected'; url: string }
  | { state: 'reconnecting'; inMs: number; reason: string; attempt: number }
  | { state: 'stalled'; silentMs: number }

export interface BackoffOptions {
  /** first delay, default 500 ms */
  initialMs?: number
  /** cap, default 30 s */
  maxMs?: number
  /** ± fraction of the delay, default 0.25 */
  jitter?: number
}

/** The part of the `ws` client this module uses (so a test can inject its own). */
export type WebSocketCtor = new (url: string, options: ClientOptions) => WebSocket

export interface SubscriptionOptions {
  /** `ws(s)://host[:port]` or `http(s)://…`; the subscribeRepos path is appended */
  service: string
  /** asked at every (re)connect; a number is sent as `?cursor=N`, undefined = live tail */
  getCursor: () => number | undefined | Promise<number | undefined>
  /** awaited when it returns a promise; the socket is paused while it is pending. A throw rejects `runSubscription`. */
  onFrame: (frame: Frame, bytes: Uint8Array) => void | Promise<void>
  /**
   * Asked first, with the raw bytes: true = the consumer has taken the frame as it is (nothing to
   * decode or wait for — an out-of-scope commit), so `onFrame` is not called. A throw rejects
   * `runSubscription` like one from `onFrame`.
   */
  passThrough?: (bytes: Uint8Array) => boolean
  onState?: (s: ConnectionState) => void
  /** an undecodable frame (the connection is then dropped and re-opened from the cursor) */
  onBadFrame?: (err: FrameDecodeError) => void
  /** abort = clean stop: the in-flight `onFrame` is awaited, the socket closed, the promise resolves */
  signal?: AbortSignal
  /** no message for this long → `stalled`, close, reconnect. Default 60 000; 0 or Infinity disables */
  stallMs?: number
  backoff?: BackoffOptions
  /** the same cursor yielding undecodable frames this many times in a row → fatal. Default 5 */
  maxBadFramesInARow?: number
  /** default `LIMITS.maxFrameBytes`; bigger messages are refused by the socket and count as bad frames */
  maxFrameBytes?: number
  /** default: the `ws` package's WebSocket */
  WebSocketImpl?: WebSocketCtor
  /**
   * Give up (fatal `unreachable`) after this many failed attempts when no connection has opened in
   * this run: a wrong URL or a relay that is down at start is an operator error to report, while a
   * relay that drops an established stream is retried forever. Default Infinity.
   */
  maxInitialFailures?: number
}

export type SubscriptionFatalCode = 'future-cursor' | 'bad-frames' | 'invalid-url' | 'invalid-cursor' | 'unreachable'

/** The stream cannot go on without a human: reconnecting would loop forever. */
export class SubscriptionFatalError extends Error {
  readonly code: SubscriptionFatalCode
  readonly cursor?: number
  constructor(code: SubscriptionFatalCode, message: string, options?: { cursor?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SubscriptionFatalError'
    this.code = code
    if (options?.cursor !== undefined) this.cursor = options.cursor
  }
}

/** How one connection ended. */
type Outcome =
  | { kind: 'aborted' }
  | { kind: 'reconnect'; reason: string }
  | { kind: 'bad-frame'; err: FrameDecodeError }
  | { kind: 'future-cursor'; message?: string }
  | { kind: 'consumer-error'; err: unknown }

interface ConnectionResult {
  outcome: Outcome
  /** frames handed to onFrame successfully on this connection */
  delivered: number
  /** the WebSocket handshake completed */
  opened: boolean
}

/**
 * Runs the subscription until `signal` aborts (resolves) or a fatal condition (rejects with
 * `SubscriptionFatalError`, or with whatever `onFrame` threw).
 */
export async function runSubscription(opts: SubscriptionOptions): Promise<void> {
  const baseUrl = subscribeReposUrl(opts.service)
  const signal = opts.signal
  const maxBad = opts.maxBadFramesInARow ?? 5
  const initialMs = opts.backoff?.initialMs ?? 500
  const maxMs = opts.backoff?.maxMs ?? 30_000
  const jitter = opts.backoff?.jitter ?? 0.25

  let failures = 0 // consecutive connections that delivered nothing (drives the backoff)
  let everOpened = false
  const maxInitialFailures = opts.maxInitialFailures ?? Infinity
  let badCursor: number | undefined
  let badCount = 0

  while (!signal?.aborted) {
    const cursor = await opts.getCursor()
    if (signal?.aborted) return
    if (cursor !== undefined && (!Number.isSafeInteger(cursor) || cursor < 0)) {
      throw new SubscriptionFatalError('invalid-cursor', `cursor ${String(cursor)} is not a non-negative integer`)
    }
    const url = new URL(baseUrl)
    if (cursor !== undefined) url.searchParams.set('cursor', String(cursor))

    opts.onState?.({ state: 'connecting', url: url.toString(), attempt: failures + 1 })
    const { outcome, delivered, opened } = await runConnection(url.toString(), opts)
    everOpened ||= opened

    switch (outcome.kind) {
      case 'aborted':
        return
      case 'consumer-error':
        throw outcome.err
      case 'future-cursor':
        throw new SubscriptionFatalError(
          'future-cursor',
          `the server says cursor ${cursor ?? '(none)'} is ahead of its stream (FutureCursor${
            outcome.message ? `: ${outcome.message}` : ''
          }); the stored cursor does not belong to this service or the service lost history — ` +
            `not reconnecting`,
          { cursor },
        )
    }

    let reason: string
    if (outcome.kind === 'bad-frame') {
      opts.onBadFrame?.(outcome.err)
      // The cursor to resume from (all frames before the bad one have been processed).
      const at = await opts.getCursor()
      const sameSpot = at === badCursor && !(at === undefined && delivered > 0)
      badCount = sameSpot && badCount > 0 ? badCount + 1 : 1
      badCursor = at
      if (badCount >= maxBad) {
        throw new SubscriptionFatalError(
          'bad-frames',
          `${badCount} undecodable frames in a row at cursor ${at ?? '(none)'} (last: ${outcome.err.code}: ${
            outcome.err.message
          }); not reconnecting`,
          { cursor: at, cause: outcome.err },
        )
      }
      reason = `bad frame (${outcome.err.code}): ${outcome.err.message}`
    } else {
      reason = outcome.reason
    }

    if (delivered > 0) failures = 0
    if (!everOpened && failures + 1 >= maxInitialFailures) {
      throw new SubscriptionFatalError('unreachable', `cannot reach ${baseUrl} after ${failures + 1} attempts (${reason})`, { cursor })
    }
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30))
    const inMs = Math.max(0, Math.round(Math.min(maxMs, base * (1 + jitter * (Math.random() * 2 - 1)))))
    failures++
    if (signal?.aborted) return
    opts.onState?.({ state: 'reconnecting', inMs, reason, attempt: failures + 1 })
    await sleep(inMs, signal)
  }
}

/** `ws(s)://host[:port][/base]/xrpc/com.atproto.sync.subscribeRepos` from a service URL. */
export function subscribeReposUrl(service: string): string {
  let url: URL
  try {
    url = new URL(service)
  } catch (err) {
    throw new SubscriptionFatalError('invalid-url', `service ${JSON.stringify(service)} is not a URL`, { cause: err })
  }
  if (url.protocol === 'http:') url.protocol = 'ws:'
  else if (url.protocol === 'https:') url.protocol = 'wss:'
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new SubscriptionFatalError('invalid-url', `service ${service} must be ws(s):// or http(s)://`)
  }
  if (url.username || url.password) {
    throw new SubscriptionFatalError('invalid-url', `service ${url.host}: credentials in the URL are not supported`)
  }
  url.hash = ''
  url.searchParams.delete('cursor')
  const path = url.pathname.replace(/\/+$/, '')
  if (!path.endsWith(SUBSCRIBE_REPOS_PATH)) url.pathname = path + SUBSCRIBE_REPOS_PATH
  return url.toString()
}

/** One connection, from open to its end; resolves once no `onFrame` call is in flight. */
function runConnection(url: string, opts: SubscriptionOptions): Promise<ConnectionResult> {
  const signal = opts.signal
  const stallMs = opts.stallMs ?? 60_000
  const stallOn = stallMs > 0 && Number.isFinite(stallMs)
  const maxFrameBytes = opts.maxFrameBytes ?? LIMITS.maxFrameBytes
  const Impl: WebSocketCtor = opts.WebSocketImpl ?? WebSocket

  return new Promise<ConnectionResult>((resolve) => {
    const queue: Uint8Array[] = []
    let delivered = 0
    let opened = false
    let busy = false // an onFrame call is in flight
    let ended: Outcome | undefined // hard end: drop the queue
    let closed: string | undefined // the socket closed: drain the queue, then end
    let settled = false
    let stallTimer: ReturnType<typeof setTimeout> | undefined
    let closeTimer: ReturnType<typeof setTimeout> | undefined
    let lastMessageAt = Date.now()
    let errorReason: string | undefined // set by 'error', reported at 'close'

    let ws: WebSocket
    try {
      ws = new Impl(url, {
        maxPayload: maxFrameBytes,
        handshakeTimeout: stallOn ? stallMs : undefined,
        followRedirects: false,
      })
    } catch (err) {
      resolve({ outcome: { kind: 'reconnect', reason: `cannot open ${url}: ${(err as Error).message}` }, delivered, opened })
      return
    }
    ws.binaryType = 'nodebuffer'

    const onAbort = () => end({ kind: 'aborted' }, true)
    signal?.addEventListener('abort', onAbort, { once: true })

    const armStall = () => {
      if (stallTimer) clearTimeout(stallTimer)
      stallTimer = undefined
      if (!stallOn || ended || closed !== undefined) return
      stallTimer = setTimeout(checkStall, stallMs)
    }

    // frames handled synchronously do not re-arm the timer one by one: when it fires, the time since
    // the last message decides whether the wire is silent or the check is simply due again later
    const checkStall = () => {
      stallTimer = undefined
      if (busy || ended || closed !== undefined) return // a slow consumer is not a silent wire
      const silentMs = Date.now() - lastMessageAt
      if (silentMs < stallMs) {
        stallTimer = setTimeout(checkStall, stallMs - silentMs)
        return
      }
      opts.onState?.({ state: 'stalled', silentMs })
      end({ kind: 'reconnect', reason: `stalled: no message for ${silentMs} ms` })
    }

    /** Decide the outcome (first one wins) and drop the socket. */
    function end(outcome: Outcome, graceful = false) {
      if (ended) return
      ended = outcome
      queue.length = 0
      if (stallTimer) clearTimeout(stallTimer)
      stallTimer = undefined
      if (closed !== undefined || ws.readyState === WebSocket.CLOSED) {
        // already closed
      } else if (graceful && ws.readyState === WebSocket.OPEN) {
        ws.close(1000)
        // read again so the server's closing handshake (and anything before it, ignored) comes in
        if (ws.isPaused) ws.resume()
        // do not wait on ws's own 30 s close timer
        closeTimer = setTimeout(() => ws.terminate(), 1000)
      } else {
        ws.terminate()
      }
      maybeSettle()
    }

    function maybeSettle() {
      if (settled || busy) return
      const outcome = ended ?? (closed !== undefined && queue.length === 0 ? { kind: 'reconnect' as const, reason: closed } : undefined)
      if (!outcome) return
      // for a graceful close, wait for the socket to finish closing (closeTimer bounds it)
      if (ended?.kind === 'aborted' && closed === undefined && ws.readyState !== WebSocket.CLOSED) return
      settled = true
      if (stallTimer) clearTimeout(stallTimer)
      if (closeTimer) clearTimeout(closeTimer)
      signal?.removeEventListener('abort', onAbort)
      resolve({ outcome, delivered, opened })
    }

    ws.on('open', () => {
      opened = true
      lastMessageAt = Date.now()
      opts.onState?.({ state: 'connected', url })
      armStall()
    })

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (ended) return
      lastMessageAt = Date.now()
      if (!isBinary) {
        end({ kind: 'bad-frame', err: new FrameDecodeError('bad-header', 'text WebSocket message; frames are binary') })
        return
      }
      queue.push(toBytes(data))
      if (!busy) pump()
    })

    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        end({
          kind: 'bad-frame',
          err: new FrameDecodeError('frame-too-big', `frame exceeds ${maxFrameBytes} bytes`, { cause: err }),
        })
        return
      }
      // 'close' follows; remember why
      errorReason ??= err.message || err.code || 'connection error'
    })

    ws.on('close', (code: number, reason: Buffer) => {
      const why = errorReason
        ? `connection error: ${errorReason}`
        : `closed by server (${code}${reason.length ? ` ${reason.toString('utf8')}` : ''})`
      closed = why
      if (stallTimer) clearTimeout(stallTimer)
      stallTimer = undefined
      if (closeTimer) clearTimeout(closeTimer)
      closeTimer = undefined
      maybeSettle()
    })

    /**
     * Hands queued frames to the consumer in order. A frame the consumer takes synchronously costs no
     * pause and no await; when it returns a promise the socket is paused until it settles, and the
     * next frames wait in the queue.
     */
    function pump(): void {
      busy = true
      while (!ended && queue.length > 0) {
        const bytes = queue.shift()!
        if (opts.passThrough) {
          let taken: boolean
          try {
            taken = opts.passThrough(bytes)
          } catch (err) {
            end({ kind: 'consumer-error', err })
            break
          }
          if (taken) {
            delivered++
            continue
          }
        }
        let frame: Frame
        try {
          frame = decodeFrame(bytes, { maxFrameBytes })
        } catch (err) {
          const e = err instanceof FrameDecodeError ? err : new FrameDecodeError('bad-cbor', String(err), { cause: err })
          end({ kind: 'bad-frame', err: e })
          break
        }
        if (frame.kind === 'error') {
          if (frame.error === 'FutureCursor') end({ kind: 'future-cursor', message: frame.message })
          else end({ kind: 'reconnect', reason: `error frame ${frame.error}${frame.message ? `: ${frame.message}` : ''}` })
          break
        }
        let pending: void | Promise<void>
        try {
          pending = opts.onFrame(frame, bytes)
        } catch (err) {
          end({ kind: 'consumer-error', err })
          break
        }
        if (pending && typeof pending.then === 'function') {
          // the consumer is working: stop reading until it is done
          if (!ws.isPaused) ws.pause()
          pending.then(
            () => {
              delivered++
              pump()
            },
            (err: unknown) => {
              end({ kind: 'consumer-error', err })
              busy = false
              maybeSettle()
            },
          )
          return
        }
        delivered++
      }
      busy = false
      if (ended || closed !== undefined) {
        maybeSettle()
        return
      }
      // caught up: read again; the silence counts from now
      if (ws.isPaused) {
        ws.resume()
        lastMessageAt = Date.now()
        armStall()
      } else if (!stallTimer) {
        armStall()
      }
    }
  })
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) {
    const buf = Buffer.concat(data)
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
