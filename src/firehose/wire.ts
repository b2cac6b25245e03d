/**
 * Encoding side of the `subscribeRepos` wire format, for tests and for a fake relay: a frame is
 * two concatenated DAG-CBOR objects, a header `{op, t}` and a body. The inverse of `frames.ts`.
 *
 * Bodies may be written naturally: a `Uint8Array` anywhere in the body becomes a CBOR byte string,
 * `{$link: 'bafy…'}` (or a `CidLinkWrapper`) becomes a CID link (tag 42), `undefined` keys are dropped.
 */
import { encode, toBytes, BytesWrapper, CidLinkWrapper } from '@atcute/cbor'
import type { CidLink } from '@atcute/cbor'
import type { StreamEvent } from './events.ts'

export interface FrameHeader {
  op: number
  t?: string
}

/** A CID link for a frame body, from the CID's base32 string. */
export const cidLink = (cid: string): CidLink => ({ $link: cid })

/** Encodes one frame: DAG-CBOR(header) ‖ DAG-CBOR(body). */
export function encodeFrame(header: FrameHeader, body: object): Uint8Array {
  const h: Record<string, unknown> = { op: header.op }
  if (header.t !== undefined) h.t = header.t
  return concat(encode(h), encode(toWire(body)))
}

/** A message frame (`op: 1`) of type `t`, e.g. `#commit`. */
export function encodeMessageFrame(t: string, body: object): Uint8Array {
  return encodeFrame({ op: 1, t }, body)
}

/** An error frame (`op: -1`), e.g. `FutureCursor` or `ConsumerTooSlow`. */
export function encodeErrorFrame(error: string, message?: string): Uint8Array {
  return encodeFrame({ op: -1 }, message === undefined ? { error } : { error, message })
}

/**
 * Encodes a typed event (as `decodeFrame` returns it) back into a wire frame: CID strings become
 * links, byte arrays byte strings. `decodeFrame(encodeEventFrame(e))` gives back `e`.
 */
export function encodeEventFrame(evt: StreamEvent): Uint8Array {
  switch (evt.type) {
    case 'commit':
      return encodeMessageFrame('#commit', {
        seq: evt.seq,
        repo: evt.repo,
        rev: evt.rev,
        since: evt.since,
        commit: cidLink(evt.commit),
        blocks: evt.blocks,
        ops: evt.ops.map((op) => ({
          action: op.action,
          path: op.path,
          cid: op.cid === null ? null : cidLink(op.cid),
          prev: op.prev === undefined ? undefined : cidLink(op.prev),
        })),
        prevData: evt.prevData === undefined ? undefined : cidLink(evt.prevData),
        time: evt.time,
        // deprecated fields real PDSes still send; decoders ignore them
        rebase: false,
        tooBig: false,
        blobs: [],
      })
    case 'sync':
      return encodeMessageFrame('#sync', { seq: evt.seq, did: evt.did, rev: evt.rev, blocks: evt.blocks, time: evt.time })
    case 'identity':
      return encodeMessageFrame('#identity', { seq: evt.seq, did: evt.did, handle: evt.handle, time: evt.time })
    case 'account':
      return encodeMessageFrame('#account', {
        seq: evt.seq,
        did: evt.did,
        active: evt.active,
        status: evt.status,
        time: evt.time,
      })
    case 'info':
      return encodeMessageFrame('#info', { name: evt.name, message: evt.message })
  }
}

/** Makes a body encodable by `@atcute/cbor`: raw bytes wrapped, undefined dropped, links kept. */
function toWire(value: unknown): unknown {
  if (value instanceof Uint8Array) return toBytes(value)
  if (Array.isArray(value)) return value.map(toWire)
  if (typeof value !== 'object' || value === null) return value
  if (value instanceof CidLinkWrapper || value instanceof BytesWrapper) return value
  const keys = Object.keys(value)
  if (keys.length === 1 && (keys[0] === '$link' || keys[0] === '$bytes')) return value
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k]
    if (v !== undefined) out[k] = toWire(v)
  }
  return out
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}
