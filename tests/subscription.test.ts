import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { create as createCid, toString as cidToString } from '@atcute/cid'
import {
  runSubscription,
  subscribeReposUrl,
  SubscriptionFatalError,
  type ConnectionState,
  type SubscriptionOptions,
} from '../src/firehose/subscription.ts'
import { encodeErrorFrame, encodeEventFrame, encodeFrame, encodeMessageFrame } from '../src/firehose/wire.ts'
import { decodeFrame, FrameDecodeError } from '../src/firehose/frames.ts'
import type { CommitEvent, Frame } from '../src/firehose/events.ts'

// ---------------------------------------------------------------- a local relay speaking the wire

interface Conn {
  ws: WebSocket
  query: URLSearchParams
  path: string
  closed: Promise<number>
}

interface Relay {
  url: string
  port: number
  conns: Conn[]
  close(): Promise<void>
}

const relays: Relay[] = []

async function startRelay(onConnection: (c: Conn, n: number) => void, port = 0): Promise<Relay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port })
  await once(wss, 'listening')
  const conns: Conn[] = []
  wss.on('connection', (ws, req) => {
    const u = new URL(req.url ?? '/', 'http://relay')
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)))
    const c: Conn = { ws, query: u.searchParams, path: u.pathname, closed }
    conns.push(c)
    onConnection(c, conns.length)
  })
  const actualPort = (wss.address() as AddressInfo).port
  const relay: Relay = {
    url: `ws://127.0.0.1:${actualPort}`,
    port: actualPort,
    conns,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
    },
  }
  relays.push(relay)
  return relay
}

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
let baselineTimers = 0
beforeAll(() => {
  baselineTimers = timers()
})

afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()))
  // runSubscription has settled in every test: it must leave no timer behind
  expect(timers()).toBeLessThanOrEqual(baselineTimers)
})

const identityFrame = (seq: number) =>
  encodeEventFrame({ type: 'identity', seq, did: `did:plc:test${seq}`, time: new Date(0).toISOString() })

const seqOf = (f: Frame): number | undefined =>
  f.kind === 'message' && f.event.type !== 'info' ? f.event.seq : f.kind === 'unknown' ? f.seq : undefined

const fastBackoff = { initialMs: 10, maxMs: 50, jitter: 0 }

/** A consumer that remembers the last seq as its cursor, like the real mirror does. */
function consumer(extra: Partial<SubscriptionOptions> & { stopAt?: number } = {}) {
  const ac = new AbortController()
  const seqs: number[] = []
  const frames: Frame[] = []
  const states: ConnectionState[] = []
  const bad: FrameDecodeError[] = []
  let cursor: number | undefined = undefined
  const opts: SubscriptionOptions = {
    service: '',
    signal: ac.signal,
    backoff: fastBackoff,
    getCursor: () => cursor,
    onFrame: (f) => {
      frames.push(f)
      const s = seqOf(f)
      if (s !== undefined) {
        seqs.push(s)
        cursor = s
        if (extra.stopAt !== undefined && s >= extra.stopAt) ac.abort()
      }
    },
    onState: (s) => states.push(s),
    onBadFrame: (e) => bad.push(e),
    ...extra,
  }
  return {
    ac,
    seqs,
    frames,
    states,
    bad,
    opts,
    setCursor: (c: number | undefined) => (cursor = c),
    run: (service: string) => runSubscription({ ...opts, service }),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------- wire format

describe('wire', () => {
  it('round-trips a #commit body through decodeFrame', async () => {
    const enc = new TextEncoder()
    const commit = cidToString(await createCid(0x71, enc.encode('commit')))
    const rec = cidToString(await createCid(0x71, enc.encode('record')))
    const prev = cidToString(await createCid(0x71, enc.encode('prev')))
    const data = cidToString(await createCid(0x71, enc.encode('data')))
    const evt: CommitEvent = {
      type: 'commit',
      seq: 12345,
      repo: 'did:plc:abc',
      rev: '3lzabc',
      since: '3lyabc',
      commit,
      blocks: new Uint8Array([0x0a, 0xa1, 0x65, 1, 2, 3, 255]),
      ops: [
        { action: 'create', path: 'org.stormlightlabs.malfestio.card/1', cid: rec },
        { action: 'update', path: 'org.stormlightlabs.malfestio.deck/2', cid: rec, prev },
        { action: 'delete', path: 'org.stormlightlabs.malfestio.note/3', cid: null, prev },
      ],
      prevData: data,
      time: '2025-01-01T00:00:00.000Z',
    }
    expect(decodeFrame(encodeEventFrame(evt))).toEqual({ kind: 'message', event: evt })

    // the generic encoder with raw bytes and {$link} objects gives the same frame
    const generic = encodeFrame(
      { op: 1, t: '#commit' },
      {
        seq: 12345,
        repo: 'did:plc:abc',
        rev: '3lzabc',
        since: '3lyabc',
        commit: { $link: commit },
        blocks: evt.blocks,
        ops: evt.ops.map((o) => ({
          action: o.action,
          path: o.path,
          cid: o.cid ? { $link: o.cid } : null,
          prev: o.prev ? { $link: o.prev } : undefined,
        })),
        prevData: { $link: data },
        time: evt.time,
      },
    )
    expect(decodeFrame(generic)).toEqual({ kind: 'message', event: evt })
  })

  it('encodes error frames, #info and unknown types', () => {
    expect(decodeFrame(encodeErrorFrame('FutureCursor', 'too far'))).toEqual({
      kind: 'error',
      error: 'FutureCursor',
      message: 'too far',
    })
    expect(decodeFrame(encodeErrorFrame('ConsumerTooSlow'))).toEqual({ kind: 'error', error: 'ConsumerTooSlow' })
    expect(decodeFrame(encodeEventFrame({ type: 'info', name: 'OutdatedCursor' }))).toEqual({
      kind: 'message',
      event: { type: 'info', name: 'OutdatedCursor' },
    })
    expect(decodeFrame(encodeMessageFrame('#future', { seq: 9 }))).toEqual({ kind: 'unknown', t: '#future', seq: 9 })
  })
})

describe('subscribeReposUrl', () => {
  it('appends the path and converts http to ws', () => {
    expect(subscribeReposUrl('wss://bsky.network')).toBe('wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos')
    expect(subscribeReposUrl('http://localhost:2583/')).toBe('ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos')
    expect(subscribeReposUrl('https://pds.example')).toBe('wss://pds.example/xrpc/com.atproto.sync.subscribeRepos')
    expect(subscribeReposUrl('ws://h/xrpc/com.atproto.sync.subscribeRepos?cursor=5')).toBe(
      'ws://h/xrpc/com.atproto.sync.subscribeRepos',
    )
  })

  it('rejects bad service URLs as fatal', async () => {
    for (const service of ['not a url', 'ftp://host']) {
      await expect(runSubscription({ service, getCursor: () => undefined, onFrame: () => {} })).rejects.toMatchObject({
        code: 'invalid-url',
      })
    }
  })
})

// ---------------------------------------------------------------- the client against a real socket

describe('runSubscription', () => {
  it('delivers frames in order, sends the cursor, passes #info and unknown types through', async () => {
    const relay = await startRelay(({ ws }) => {
      for (let s = 43; s <= 45; s++) ws.send(identityFrame(s))
      ws.send(encodeEventFrame({ type: 'info', name: 'OutdatedCursor', message: 'old' }))
      ws.send(encodeMessageFrame('#future', { seq: 46 }))
      ws.send(identityFrame(47))
    })
    const c = consumer({ stopAt: 47 })
    c.setCursor(42)
    await c.run(relay.url)
    expect(c.seqs).toEqual([43, 44, 45, 46, 47])
    expect(c.frames.map((f) => f.kind)).toEqual(['message', 'message', 'message', 'message', 'unknown', 'message'])
    expect(c.frames[3]).toEqual({ kind: 'message', event: { type: 'info', name: 'OutdatedCursor', message: 'old' } })
    expect(relay.conns).toHaveLength(1)
    expect(relay.conns[0]!.path).toBe('/xrpc/com.atproto.sync.subscribeRepos')
    expect(relay.conns[0]!.query.get('cursor')).toBe('42')
    expect(c.states.map((s) => s.state)).toEqual(['connecting', 'connected'])
  })

  it('sends no cursor when getCursor returns undefined', async () => {
    const relay = await startRelay(({ ws }) => ws.send(identityFrame(1)))
    const c = consumer({ stopAt: 1 })
    await c.run(relay.url)
    expect(relay.conns[0]!.query.has('cursor')).toBe(false)
  })

  for (const code of [1000, 1001, 1011]) {
    it(`reconnects after a clean close (${code}) and resumes from getCursor()`, async () => {
      const relay = await startRelay(({ ws }, n) => {
        if (n === 1) {
          ws.send(identityFrame(1))
          ws.send(identityFrame(2))
          ws.close(code, 'bye')
        } else {
          ws.send(identityFrame(Number(relay.conns[n - 1]!.query.get('cursor')) + 1))
        }
      })
      const c = consumer({ stopAt: 3 })
      await c.run(relay.url)
      expect(c.seqs).toEqual([1, 2, 3])
      expect(relay.conns).toHaveLength(2)
      expect(relay.conns[0]!.query.has('cursor')).toBe(false)
      expect(relay.conns[1]!.query.get('cursor')).toBe('2')
      const rec = c.states.find((s) => s.state === 'reconnecting')
      expect(rec).toMatchObject({ state: 'reconnecting', reason: expect.stringContaining(String(code)) })
    })
  }

  it('gives up with a clear fatal error when the upstream never answers, but not once it has', async () => {
    // a port nobody listens on: bind, read the port, close
    const srv = new WebSocketServer({ port: 0 })
    await once(srv, 'listening')
    const port = (srv.address() as AddressInfo).port
    await new Promise((r) => srv.close(r))
    const states: string[] = []
    await expect(
      runSubscription({
        service: `ws://127.0.0.1:${port}`,
        getCursor: () => undefined,
        onFrame: () => {},
        onState: (s) => states.push(s.state),
        backoff: fastBackoff,
        maxInitialFailures: 3,
      }),
    ).rejects.toMatchObject({ code: 'unreachable', message: expect.stringContaining('after 3 attempts') })
    expect(states.filter((s) => s === 'connecting')).toHaveLength(3)

    // an upstream that answered once and then goes away is retried beyond the limit
    let connections = 0
    const relay = await startRelay(({ ws }) => {
      connections++
      if (connections === 1) ws.send(identityFrame(1))
      ws.terminate()
    })
    const ac = new AbortController()
    const run = runSubscription({
      service: relay.url,
      getCursor: () => undefined,
      onFrame: () => {},
      backoff: fastBackoff,
      maxInitialFailures: 2,
      signal: ac.signal,
    })
    while (connections < 5) await sleep(10)
    ac.abort()
    await expect(run).resolves.toBeUndefined()
  })

  it('reconnects after an abrupt termination', async () => {
    const relay = await startRelay(({ ws }, n) => {
      if (n === 1) {
        ws.send(identityFrame(1))
        ws.send(identityFrame(2))
      } else {
        ws.send(identityFrame(3))
      }
    })
    const c = consumer({ stopAt: 3 })
    const onFrame = c.opts.onFrame
    await runSubscription({
      ...c.opts,
      service: relay.url,
      onFrame: (f, b) => {
        onFrame(f, b)
        if (seqOf(f) === 2) relay.conns[0]!.ws.terminate()
      },
    })
    expect(c.seqs).toEqual([1, 2, 3])
    expect(relay.conns).toHaveLength(2)
    expect(relay.conns[1]!.query.get('cursor')).toBe('2')
  })

  it('detects a stall, reports it, and reconnects', async () => {
    const relay = await startRelay(({ ws }, n) => {
      ws.send(identityFrame(n)) // then silence
    })
    const c = consumer({ stopAt: 2, stallMs: 200 })
    const t0 = Date.now()
    await c.run(relay.url)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190)
    expect(c.seqs).toEqual([1, 2])
    expect(relay.conns[1]!.query.get('cursor')).toBe('1')
    const i = c.states.findIndex((s) => s.state === 'stalled')
    expect(i).toBeGreaterThan(0)
    expect((c.states[i] as { silentMs: number }).silentMs).toBeGreaterThanOrEqual(190)
    expect(c.states[i + 1]).toMatchObject({ state: 'reconnecting', reason: expect.stringContaining('stalled') })
    // the stalled socket was dropped
    await relay.conns[0]!.closed
  })

  it('does not count a slow consumer as a stall', async () => {
    const relay = await startRelay(({ ws }) => {
      ws.send(identityFrame(1))
      ws.send(identityFrame(2))
    })
    const c = consumer({ stopAt: 2, stallMs: 100 })
    await runSubscription({
      ...c.opts,
      service: relay.url,
      onFrame: async (f, b) => {
        if (seqOf(f) === 1) await sleep(300)
        await c.opts.onFrame(f, b)
      },
    })
    expect(c.seqs).toEqual([1, 2])
    expect(relay.conns).toHaveLength(1)
    expect(c.states.some((s) => s.state === 'stalled')).toBe(false)
  })

  it('FutureCursor is fatal: rejects naming the cursor, no reconnect', async () => {
    const relay = await startRelay(({ ws }) => {
      ws.send(encodeErrorFrame('FutureCursor', 'Cursor in the future.'))
      ws.close()
    })
    const c = consumer()
    c.setCursor(999)
    const err = await c.run(relay.url).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SubscriptionFatalError)
    expect(err).toMatchObject({ code: 'future-cursor', cursor: 999 })
    expect((err as Error).message).toContain('999')
    await sleep(150) // several backoff periods
    expect(relay.conns).toHaveLength(1)
    expect(c.frames).toHaveLength(0)
  })

  it('ConsumerTooSlow (and other error frames) → reconnect from the cursor', async () => {
    const relay = await startRelay(({ ws }, n) => {
      if (n === 1) {
        ws.send(identityFrame(1))
        ws.send(encodeErrorFrame('ConsumerTooSlow', 'Stream consumer too slow'))
        ws.close()
      } else if (n === 2) {
        ws.send(encodeErrorFrame('SomethingElse'))
        ws.close()
      } else {
        ws.send(identityFrame(2))
      }
    })
    const c = consumer({ stopAt: 2 })
    await c.run(relay.url)
    expect(c.seqs).toEqual([1, 2])
    expect(relay.conns).toHaveLength(3)
    expect(relay.conns[1]!.query.get('cursor')).toBe('1')
    expect(relay.conns[2]!.query.get('cursor')).toBe('1')
    const reasons = c.states.flatMap((s) => (s.state === 'reconnecting' ? [s.reason] : []))
    expect(reasons[0]).toContain('ConsumerTooSlow')
    expect(reasons[1]).toContain('SomethingElse')
  })

  it('an undecodable frame → onBadFrame, drop, reconnect from the cursor', async () => {
    const relay = await startRelay(({ ws }, n) => {
      if (n === 1) {
        ws.send(identityFrame(1))
        ws.send(new Uint8Array([0xff, 0x00, 0x13, 0x37]))
        ws.send(identityFrame(2)) // after the garbage: must not be delivered from this connection
      } else {
        ws.send(identityFrame(2))
      }
    })
    const c = consumer({ stopAt: 2 })
    await c.run(relay.url)
    expect(c.seqs).toEqual([1, 2])
    expect(c.bad).toHaveLength(1)
    expect(c.bad[0]).toBeInstanceOf(FrameDecodeError)
    expect(relay.conns).toHaveLength(2)
    expect(relay.conns[1]!.query.get('cursor')).toBe('1')
    await relay.conns[0]!.closed
  })

  it('text messages and oversized frames are bad frames too', async () => {
    const relay = await startRelay(({ ws }, n) => {
      if (n === 1) ws.send('{"op":1}')
      else if (n === 2) ws.send(encodeMessageFrame('#big', { seq: 1, pad: new Uint8Array(5000) }))
      else ws.send(identityFrame(1))
    })
    const c = consumer({ stopAt: 1, maxFrameBytes: 2000 })
    await c.run(relay.url)
    expect(c.bad.map((e) => e.code)).toEqual(['bad-header', 'frame-too-big'])
    expect(c.seqs).toEqual([1])
  })

  it('the same cursor yielding bad frames N times in a row is fatal', async () => {
    const relay = await startRelay(({ ws }) => ws.send(new Uint8Array([0xa1, 0x61])))
    const c = consumer({ maxBadFramesInARow: 3 })
    c.setCursor(7)
    const err = await c.run(relay.url).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SubscriptionFatalError)
    expect(err).toMatchObject({ code: 'bad-frames', cursor: 7 })
    expect((err as Error).message).toContain('7')
    expect(c.bad).toHaveLength(3)
    expect(relay.conns).toHaveLength(3)
    await sleep(100)
    expect(relay.conns).toHaveLength(3)
  })

  it('bad frames at advancing cursors are not "in a row"', async () => {
    const relay = await startRelay(({ ws }, n) => {
      if (n <= 4) ws.send(identityFrame(n))
      ws.send(new Uint8Array([0xff]))
    })
    const c = consumer({ maxBadFramesInARow: 2, stopAt: 4 })
    await c.run(relay.url)
    expect(c.seqs).toEqual([1, 2, 3, 4])
    expect(c.bad).toHaveLength(3)
  })

  it('backpressure: a slow consumer sees 1000 frames one at a time, in order', async () => {
    const N = 1000
    const relay = await startRelay(({ ws }) => {
      for (let s = 1; s <= N; s++) ws.send(identityFrame(s))
    })
    let active = 0
    let maxActive = 0
    const c = consumer({ stopAt: N })
    await runSubscription({
      ...c.opts,
      service: relay.url,
      onFrame: async (f, b) => {
        active++
        maxActive = Math.max(maxActive, active)
        const s = seqOf(f)!
        if (s <= 20) await sleep(5)
        else if (s % 10 === 0) await new Promise((r) => setImmediate(r))
        else await Promise.resolve()
        await c.opts.onFrame(f, b)
        active--
      },
    })
    expect(maxActive).toBe(1)
    expect(c.seqs).toEqual(Array.from({ length: N }, (_, i) => i + 1))
    expect(relay.conns).toHaveLength(1)
  })

  it('backpressure: while onFrame is pending the socket is paused and the backlog stays on the server', async () => {
    const FRAMES = 40
    const pad = new Uint8Array(1_000_000)
    let server!: WebSocket
    const relay = await startRelay(({ ws }) => {
      server = ws
      for (let s = 1; s <= FRAMES; s++) ws.send(encodeMessageFrame('#big', { seq: s, pad }))
    })
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let backlog = -1
    const c = consumer({ stopAt: FRAMES })
    const run = runSubscription({
      ...c.opts,
      service: relay.url,
      onFrame: async (f, b) => {
        if (seqOf(f) === 1) await gate
        await c.opts.onFrame(f, b)
      },
    })
    await sleep(400)
    backlog = server.bufferedAmount
    const seenWhilePaused = c.seqs.length
    release()
    await run
    expect(seenWhilePaused).toBe(0)
    // ~40 MB sent; a paused reader leaves most of it unsent (kernel buffers hold a few MB at most)
    expect(backlog).toBeGreaterThan(10_000_000)
    expect(c.seqs).toEqual(Array.from({ length: FRAMES }, (_, i) => i + 1))
  })

  it('if onFrame throws, runSubscription rejects with that error', async () => {
    const relay = await startRelay(({ ws }) => {
      ws.send(identityFrame(1))
      ws.send(identityFrame(2))
    })
    const boom = new Error('boom')
    const c = consumer()
    await expect(
      runSubscription({
        ...c.opts,
        service: relay.url,
        onFrame: (f) => {
          if (seqOf(f) === 2) throw boom
        },
      }),
    ).rejects.toBe(boom)
    await relay.conns[0]!.closed
    expect(relay.conns).toHaveLength(1)
  })

  it('abort resolves and closes the socket cleanly', async () => {
    const relay = await startRelay(({ ws }) => ws.send(identityFrame(1)))
    const c = consumer({ stopAt: 1 })
    await c.run(relay.url)
    expect(await relay.conns[0]!.closed).toBe(1000)
  })

  it('abort waits for the in-flight onFrame, then resolves', async () => {
    const relay = await startRelay(({ ws }) => {
      ws.send(identityFrame(1))
      ws.send(identityFrame(2))
    })
    const c = consumer()
    let finished = false
    const run = runSubscription({
      ...c.opts,
      service: relay.url,
      onFrame: async () => {
        c.ac.abort()
        await sleep(100)
        finished = true
      },
    })
    await run
    expect(finished).toBe(true)
    expect(await relay.conns[0]!.closed).toBe(1000)
  })

  it('abort during the backoff wait resolves promptly', async () => {
    const relay = await startRelay(({ ws }) => ws.close())
    const c = consumer({ backoff: { initialMs: 10_000, maxMs: 10_000, jitter: 0 } })
    const run = c.run(relay.url)
    while (!c.states.some((s) => s.state === 'reconnecting')) await sleep(10)
    const t0 = Date.now()
    c.ac.abort()
    await run
    expect(Date.now() - t0).toBeLessThan(500)
  })

  it('connection refused, then the server appears → connects (backoff)', async () => {
    // find a free port, then free it
    const probe = await startRelay(() => {})
    const port = probe.port
    await probe.close()

    const c = consumer({ stopAt: 1, backoff: { initialMs: 20, maxMs: 80, jitter: 0.5 } })
    const run = c.run(`http://127.0.0.1:${port}`)
    await sleep(300)
    const refusals = c.states.filter((s) => s.state === 'reconnecting')
    expect(refusals.length).toBeGreaterThanOrEqual(2)
    expect(refusals[0]).toMatchObject({ reason: expect.stringMatching(/ECONNREFUSED|connection error/) })
    // delays grow and stay within maxMs
    for (const r of refusals) expect((r as { inMs: number }).inMs).toBeLessThanOrEqual(80)
    await startRelay(({ ws }) => ws.send(identityFrame(1)), port)
    await run
    expect(c.seqs).toEqual([1])
    const connecting = c.states.filter((s) => s.state === 'connecting') as { attempt: number }[]
    expect(connecting.at(-1)!.attempt).toBeGreaterThan(2)
  })
})
