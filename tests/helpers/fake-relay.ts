/**
 * A fake relay for faults the real PDS cannot produce on demand: it serves recorded frames over a
 * real WebSocket at /xrpc/com.atproto.sync.subscribeRepos, honouring ?cursor= like a relay does.
 * Frames are real ones captured off a dev-env PDS, optionally altered (see `tamper`).
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, WebSocket } from 'ws'
import { fromUint8Array, writeCarStream } from '@atcute/car'
import { decode, encode, toBytes } from '@atcute/cbor'
import { create as createCid, toString as cidToString, fromString as cidFromString, toCidLink } from '@atcute/cid'
import { decodeFrame } from '../../src/firehose/frames.ts'
import type { CommitEvent, StreamEvent } from '../../src/firehose/events.ts'
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

function seqOf(frame: Uint8Array): number | undefined {
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

// ───────────── tampering with real commits ─────────────

export interface CarParts {
  root: string
  blocks: Map<string, Uint8Array>
}

export function readCarParts(bytes: Uint8Array): CarParts {
  const r = fromUint8Array(bytes)
  const blocks = new Map<string, Uint8Array>()
  for (const e of r) blocks.set(cidToString(e.cid), e.bytes)
  return { root: r.roots[0]!.$link, blocks }
}

export async function writeCarParts(parts: CarParts): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  const blocks = [...parts.blocks].map(([cid, data]) => ({ cid: cidFromString(cid).bytes, data }))
  for await (const c of writeCarStream([{ $link: parts.root }], blocks)) chunks.push(c)
  return Buffer.concat(chunks)
}

/**
 * Re-signs nothing: rewrites the commit block with `edit` applied, gives it its honest new CID, and
 * points the event at it — so block hashes stay valid and only what `edit` changed is a lie.
 */
export async function editCommitBlock(evt: CommitEvent, edit: (commit: Record<string, any>) => void): Promise<CommitEvent> {
  const parts = readCarParts(evt.blocks)
  const commit = decode(parts.blocks.get(parts.root)!) as Record<string, any>
  edit(commit)
  const bytes = encode(commit)
  const cid = cidToString(await createCid(0x71, bytes))
  parts.blocks.delete(parts.root)
  parts.blocks.set(cid, bytes)
  parts.root = cid
  return { ...evt, commit: cid, blocks: await writeCarParts(parts) }
}

export { toBytes, toCidLink, cidFromString }
