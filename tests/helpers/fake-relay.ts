/**
 * A fake relay for faults the real PDS cannot produce on demand: it serves recorded frames over a
 * real WebSocket at /xrpc/com.atproto.sync.subscribeRepos, honouring ?cursor= like a relay does.
 * Frames are real ones captured off a dev-env PDS, optionally altered (see `tamper`).
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, WebSocket } from 'ws'
import { toBytes } from '@atcute/cbor'
import { fromString as cidFromString, toCidLink } from '@atcute/cid'
import { decodeFrame } from '../../src/firehose/frames.ts'
import type { StreamEvent } from '../../src/firehose/events.ts'
import { encodeEventFrame } from '../../src/firehose/wire.ts'

/** Reads every frame the upstream has after `cursor`, until it has been quiet for `idleMs`. */
export async function captureFrames(subscribeUrl: string, cursor = 0, idleMs = 800): Promise<Uint8Array[]> {
  const ws = new WebSocket(`${subscribeUrl}?cursor=${cursor}`)
  const frames: Uint8Array[] = []
  let timer: NodeJS.Timeout
  await new Promise<void>((resolve, reject) => {
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(resolve, idleMs)
    }
    ws.on('open', arm)
    ws.on('message', (data: Buffer) => {
      frames.push(new Uint8Array(data))
      arm()
    })
    ws.on('error', reject)
  })
  ws.close()
  return frames
}

export interface FakeRelay {
  url: string
  /** cursors asked for, one per connection */
  cursors: (number | undefined)[]
  close(): Promise<void>
}

/** Serves `frames` (in order) to each connection, skipping those with seq ≤ the asked cursor. */
export async function startFakeRelay(frames: Uint8Array[]): Promise<FakeRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  const cursors: (number | undefined)[] = []
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const c = url.searchParams.get('cursor')
    const cursor = c === null ? undefined : Number(c)
    cursors.push(cursor)
    for (const f of frames) {
      const seq = seqOf(f)
      if (cursor !== undefined && seq !== undefined && seq <= cursor) continue
      ws.send(f)
    }
  })
  const port = (wss.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    cursors,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
    },
  }
}

/** The seq of a frame, or undefined when it has none or does not decode. */
export function seqOf(frame: Uint8Array): number | undefined {
  try {
    const f = decodeFrame(frame)
    return f.kind === 'message' && 'seq' in f.event ? f.event.seq : undefined
  } catch {
    return undefined
  }
}

export const eventOf = (frame: Uint8Array): StreamEvent => {
  const f = decodeFrame(frame)
  if (f.kind !== 'message') throw new Error('not a message frame')
  return f.event
}

export const frameOf = (evt: StreamEvent): Uint8Array => encodeEventFrame(evt)

// tampering with real commits
export { readCarParts, writeCarParts, editCommitBlock, type CarParts } from './car-parts.ts'
export { toBytes, toCidLink, cidFromString }
