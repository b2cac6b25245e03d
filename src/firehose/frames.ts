/**
 * Frame decoding for `com.atproto.sync.subscribeRepos`: a frame is two concatenated DAG-CBOR
 * objects, a header `{op, t}` and a body. Decoding checks shape only; nothing here is about trust.
 */
import { CidLinkWrapper, decodeFirst } from '@atcute/cbor'
import { LIMITS } from './limits.ts'
import type { Frame, RepoOp, StreamEvent } from './events.ts'

export type FrameErrorCode = 'frame-too-big' | 'bad-cbor' | 'bad-header' | 'bad-body'

/** A frame that cannot be decoded. Such a frame has no trustworthy seq. */
export class FrameDecodeError extends Error {
  readonly code: FrameErrorCode
  constructor(code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'FrameDecodeError'
    this.code = code
  }
}

export interface DecodeOptions {
  maxFrameBytes?: number
}

/**
 * Decodes one binary WebSocket message into a typed frame.
 * Unknown message types come back as `{kind: 'unknown'}` (callers ignore them).
 * @throws {FrameDecodeError} when the bytes are not a well-formed frame
 */
export function decodeFrame(bytes: Uint8Array, opts: DecodeOptions = {}): Frame {
  const max = opts.maxFrameBytes ?? LIMITS.maxFrameBytes
  if (bytes.byteLength > max) {
    throw new FrameDecodeError('frame-too-big', `frame of ${bytes.byteLength} bytes exceeds ${max}`)
  }
  const [header, rest] = cbor(bytes, 'header')
  if (!isMap(header) || typeof header.op !== 'number') {
    throw new FrameDecodeError('bad-header', 'frame header is not a map with a numeric op')
  }
  if (rest.byteLength === 0) throw new FrameDecodeError('bad-body', 'frame has no body')
  const [body, trailing] = cbor(rest, 'body')
  if (trailing.byteLength !== 0) {
    throw new FrameDecodeError('bad-body', `${trailing.byteLength} trailing bytes after the body`)
  }
  if (!isMap(body)) throw new FrameDecodeError('bad-body', 'frame body is not a map')
  if (header.op === -1) {
    if (typeof body.error !== 'string') throw new FrameDecodeError('bad-body', 'error frame without error name')
    return { kind: 'error', error: body.error, message: optString(body.message) }
  }
  if (header.op !== 1) throw new FrameDecodeError('bad-header', `unknown frame op ${header.op}`)
  if (typeof header.t !== 'string') throw new FrameDecodeError('bad-header', 'message frame without type')
  const event = toEvent(header.t, body)
  if (!event) return { kind: 'unknown', t: header.t, seq: typeof body.seq === 'number' ? body.seq : undefined }
  return { kind: 'message', event }
}

function cbor(bytes: Uint8Array, what: string): [unknown, Uint8Array] {
  try {
    return decodeFirst(bytes)
  } catch (err) {
    throw new FrameDecodeError('bad-cbor', `${what} is not valid DAG-CBOR: ${(err as Error).message}`, { cause: err })
  }
}

type CborMap = Record<string, unknown>

const isMap = (v: unknown): v is CborMap => typeof v === 'object' && v !== null && !Array.isArray(v)

const optString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

/** A short description of a value for an error message. Never String(): a hostile array nested a
 * million deep would overflow the stack of Array.prototype.join. */
const describe = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'a map' : typeof v

function toEvent(t: string, body: CborMap): StreamEvent | null {
  switch (t) {
    case '#commit':
      return {
        type: 'commit',
        seq: seqOf(body),
        repo: str(body, 'repo'),
        rev: str(body, 'rev'),
        since: body.since == null ? null : str(body, 'since'),
        commit: link(body.commit, 'commit'),
        blocks: bytesOf(body.blocks, 'blocks'),
        ops: opsOf(body.ops),
        prevData: body.prevData == null ? undefined : link(body.prevData, 'prevData'),
        time: str(body, 'time'),
      }
    case '#sync':
      return {
        type: 'sync',
        seq: seqOf(body),
        did: str(body, 'did'),
        rev: str(body, 'rev'),
        blocks: bytesOf(body.blocks, 'blocks'),
        time: str(body, 'time'),
      }
    case '#identity':
      return { type: 'identity', seq: seqOf(body), did: str(body, 'did'), handle: optString(body.handle), time: str(body, 'time') }
    case '#account':
      if (typeof body.active !== 'boolean') throw new FrameDecodeError('bad-body', '#account without boolean active')
      return {
        type: 'account',
        seq: seqOf(body),
        did: str(body, 'did'),
        active: body.active,
        status: optString(body.status),
        time: str(body, 'time'),
      }
    case '#info':
      return { type: 'info', name: str(body, 'name'), message: optString(body.message) }
    default:
      return null
  }
}

function seqOf(body: CborMap): number {
  const seq = body.seq
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw new FrameDecodeError('bad-body', 'seq is not a non-negative integer')
  }
  return seq
}

function str(body: CborMap, key: string): string {
  const v = body[key]
  if (typeof v !== 'string') throw new FrameDecodeError('bad-body', `${key} is not a string`)
  return v
}

function link(v: unknown, what: string): string {
  const l = isMap(v) ? v.$link : undefined
  if (typeof l !== 'string') throw new FrameDecodeError('bad-body', `${what} is not a CID link`)
  return l
}

function bytesOf(v: unknown, what: string): Uint8Array {
  const buf = isMap(v) ? v.buf : undefined
  if (!(buf instanceof Uint8Array)) throw new FrameDecodeError('bad-body', `${what} is not a byte string`)
  return buf
}

function opsOf(v: unknown): RepoOp[] {
  if (!Array.isArray(v)) throw new FrameDecodeError('bad-body', 'ops is not an array')
  return v.map((op, i): RepoOp => {
    if (!isMap(op)) throw new FrameDecodeError('bad-body', `ops[${i}] is not a map`)
    const action = op.action
    if (action !== 'create' && action !== 'update' && action !== 'delete') {
      throw new FrameDecodeError('bad-body', `ops[${i}].action ${describe(action)} is not create/update/delete`)
    }
    if (typeof op.path !== 'string') throw new FrameDecodeError('bad-body', `ops[${i}].path is not a string`)
    return {
      action,
      path: op.path,
      cid: op.cid == null ? null : link(op.cid, `ops[${i}].cid`),
      prev: op.prev == null ? undefined : link(op.prev, `ops[${i}].prev`),
    }
  })
}

/** What the pass-through decision needs from a #commit: no CID is turned into a string, no op built. */
export interface CommitPeek {
  seq: number
  repo: string
  time: string
  /** the ops' `collection/rkey` paths */
  paths: string[]
}

/**
 * Reads a #commit frame without building its event: the same checks as `decodeFrame` (so a frame
 * accepted here decodes there too), but no CID is turned into a string and no op object is built —
 * an out-of-scope commit is passed over at a fraction of a full decode (the bench measures both).
 * Returns null for anything else — another type, or a frame that is not well formed — which
 * `decodeFrame` then handles (and reports) as usual.
 */
export function peekCommit(bytes: Uint8Array, maxFrameBytes: number = LIMITS.maxFrameBytes): CommitPeek | null {
  if (bytes.byteLength > maxFrameBytes) return null
  try {
    const [header, rest] = decodeFirst(bytes)
    if (!isMap(header) || header.op !== 1 || header.t !== '#commit' || rest.byteLength === 0) return null
    const [body, trailing] = decodeFirst(rest)
    if (trailing.byteLength !== 0 || !isMap(body)) return null
    const { seq, repo, rev, since, commit, blocks, ops, prevData, time } = body
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return null
    if (typeof repo !== 'string' || typeof rev !== 'string' || typeof time !== 'string') return null
    if ((since != null && typeof since !== 'string') || !isLink(commit) || (prevData != null && !isLink(prevData))) return null
    if (!(isMap(blocks) && blocks.buf instanceof Uint8Array) || !Array.isArray(ops)) return null
    const paths: string[] = []
    for (const op of ops) {
      if (!isMap(op) || typeof op.path !== 'string') return null
      if (op.action !== 'create' && op.action !== 'update' && op.action !== 'delete') return null
      if ((op.cid != null && !isLink(op.cid)) || (op.prev != null && !isLink(op.prev))) return null
      paths.push(op.path)
    }
    return { seq, repo, time, paths }
  } catch {
    return null
  }
}

/** A CID link as `link()` accepts it, without encoding the CID as a string. */
const isLink = (v: unknown): boolean => v instanceof CidLinkWrapper || (isMap(v) && typeof v.$link === 'string')
