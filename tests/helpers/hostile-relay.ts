/**
 * A relay that misbehaves on a script, over a real WebSocket: it serves recorded frames (honouring
 * ?cursor= like a relay) with garbage spliced in — undecodable bytes, text messages, frames over the
 * size limit — each garbage item sent a limited number of times, so a client that drops the
 * connection and resumes from its cursor gets past it (or, with `times: Infinity`, never does).
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { seqOf } from './fake-relay.ts'

export type ScriptItem =
  | { frame: Uint8Array }
  | { garbage: Uint8Array | string; times: number; label: string }

export interface HostileRelay {
  url: string
  /** the cursor each connection asked for */
  cursors: (number | undefined)[]
  /** garbage sent, by label, in order */
  garbageSent: string[]
  /** for each garbage sent, the seq of the honest frame it follows in the script */
  garbageAfter: number[]
  close(): Promise<void>
}

export async function startHostileRelay(script: ScriptItem[]): Promise<HostileRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 })
  await once(wss, 'listening')
  const cursors: (number | undefined)[] = []
  const garbageSent: string[] = []
  const garbageAfter: number[] = []
  const left = new Map<ScriptItem, number>()
  for (const item of script) if ('garbage' in item) left.set(item, item.times)
  const seqs = new Map<ScriptItem, number | undefined>(script.map((item) => [item, 'frame' in item ? seqOf(item.frame) : undefined]))
  // garbage sits between the honest frame before it (seq S) and the next: a client at cursor ≤ S meets it
  const after = new Map<ScriptItem, number>()
  let prev = -1
  for (const item of script) {
    if ('frame' in item) prev = seqs.get(item) ?? prev
    else after.set(item, prev)
  }

  wss.on('connection', (ws, req) => {
    const c = new URL(req.url ?? '/', 'http://x').searchParams.get('cursor')
    const cursor = c === null ? undefined : Number(c)
    cursors.push(cursor)
    for (const item of script) {
      if ('frame' in item) {
        const seq = seqs.get(item)
        if (cursor !== undefined && seq !== undefined && seq <= cursor) continue
        ws.send(item.frame)
        continue
      }
      const n = left.get(item)!
      if (n <= 0 || (cursor !== undefined && cursor > after.get(item)!)) continue
      left.set(item, n - 1)
      garbageSent.push(item.label)
      garbageAfter.push(after.get(item)!)
      ws.send(item.garbage)
      return // the client drops the connection at the garbage: nothing after it would be read
    }
  })
  const port = (wss.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    cursors,
    garbageSent,
    garbageAfter,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
    },
  }
}
