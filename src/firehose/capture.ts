/**
 * Capture files: the raw `subscribeRepos` frames of a stream, exactly as received, so a run can be
 * replayed offline through the same decoder and pipeline as the network.
 *
 * Layout (all integers big-endian):
 *
 *   magic    8 bytes   "MMCAPT\r\n"
 *   hlen     u32       length of the JSON header
 *   header   hlen      UTF-8 JSON {format, version, source, cursor, createdAt, …}
 *   frames   ( u32 length ‖ frame bytes )*    each frame: DAG-CBOR header ‖ DAG-CBOR body
 *
 * A capture made by a mirroring process (`sync --capture`) also holds the upstream's answers the
 * mirror used (getRepo, getRepoStatus) as frames of a type no firehose sends (`RECORDED_ANSWER_TYPE`,
 * see capture-run.ts); other readers skip them as unknown message types, as the spec says to.
 *
 * Reading streams: memory stays bounded by one frame (≤ the frame limit) plus a read chunk, and a
 * truncated or garbled file fails with a `CaptureFormatError` naming the byte offset and frame.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { LIMITS } from './limits.ts'

export const CAPTURE_MAGIC = new Uint8Array([0x4d, 0x4d, 0x43, 0x41, 0x50, 0x54, 0x0d, 0x0a]) // "MMCAPT\r\n"
export const CAPTURE_FORMAT = 'malfestio-mirror-capture'
export const CAPTURE_VERSION = 1
/** the JSON header is small; anything bigger is not a capture file */
const MAX_HEADER_BYTES = 64 * 1024
/**
 * The largest entry a reader accepts: stream frames are limited to 5 MB by the protocol (the decoder
 * enforces that), but recorded upstream answers (a whole getRepo CAR) can be much bigger.
 */
export const MAX_ENTRY_BYTES = 1024 * 1024 * 1024
const READ_CHUNK = 256 * 1024

export interface CaptureHeader {
  format: typeof CAPTURE_FORMAT
  version: number
  /** the upstream the frames came from (ws(s):// or http(s)://) */
  source: string
  /** the cursor the capture started after (`?cursor=`), null for the live tail */
  cursor: number | null
  /** ISO time the capture started */
  createdAt: string
  /** anything else the writer wants to note (tool version, --to, …) */
  [key: string]: unknown
}

export type CaptureErrorCode =
  | 'not-a-capture'
  | 'unreadable'
  | 'unsupported-version'
  | 'bad-header'
  | 'truncated'
  | 'garbled'
  | 'frame-too-big'
  | 'bad-frame'
  | 'bad-recording'
  | 'exists'

/** The file is not a readable capture: one line, with where it went wrong. */
export class CaptureFormatError extends Error {
  readonly code: CaptureErrorCode
  readonly offset?: number
  constructor(code: CaptureErrorCode, message: string, offset?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CaptureFormatError'
    this.code = code
    if (offset !== undefined) this.offset = offset
  }
}

// ───────────── writing ─────────────

export interface CaptureWriter {
  readonly header: CaptureHeader
  /** Appends one frame; resolves once it has been handed to the OS. */
  write(frame: Uint8Array): Promise<void>
  /** frames and bytes written so far (bytes include the header) */
  readonly frames: number
  readonly bytes: number
  /** Flushes to disk and closes. */
  close(): Promise<void>
}

export interface CreateCaptureOptions {
  source: string
  cursor?: number | null
  /** extra header fields */
  meta?: Record<string, unknown>
  /** replace an existing file (default: refuse) */
  overwrite?: boolean
  maxFrameBytes?: number
}

/**
 * Creates a capture file and writes its header.
 * @throws {CaptureFormatError} `exists` when the file exists and `overwrite` is not set
 */
export async function createCaptureWriter(path: string, opts: CreateCaptureOptions): Promise<CaptureWriter> {
  let fh: FileHandle
  try {
    fh = await open(path, opts.overwrite ? 'w' : 'wx', 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CaptureFormatError('exists', `${path} already exists (choose another --out, or remove it)`)
    }
    throw err
  }
  const header: CaptureHeader = {
    ...opts.meta,
    format: CAPTURE_FORMAT,
    version: CAPTURE_VERSION,
    source: opts.source,
    cursor: opts.cursor ?? null,
    createdAt: new Date().toISOString(),
  }
  const max = opts.maxFrameBytes ?? LIMITS.maxFrameBytes
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const head = Buffer.alloc(CAPTURE_MAGIC.byteLength + 4)
  head.set(CAPTURE_MAGIC, 0)
  head.writeUInt32BE(json.byteLength, CAPTURE_MAGIC.byteLength)
  let bytes = 0
  let frames = 0
  let position = 0
  // writes are serialised so frames land in call order even if a caller does not await
  let tail: Promise<void> = Promise.resolve()
  const append = (chunks: Uint8Array[]) => {
    const run = async () => {
      const { bytesWritten } = await fh.writev(chunks, position)
      const total = chunks.reduce((n, c) => n + c.byteLength, 0)
      if (bytesWritten !== total) throw new Error(`short write to ${path}: ${bytesWritten} of ${total} bytes`)
      position += total
      bytes += total
    }
    tail = tail.then(run)
    return tail
  }
  try {
    await append([head, json])
  } catch (err) {
    await fh.close().catch(() => undefined)
    throw err
  }
  let closed = false
  return {
    header,
    get frames() {
      return frames
    },
    get bytes() {
      return bytes
    },
    async write(frame) {
      if (closed) throw new Error('capture writer is closed')
      if (frame.byteLength > max) throw new CaptureFormatError('frame-too-big', `frame of ${frame.byteLength} bytes exceeds ${max}`)
      const len = Buffer.alloc(4)
      len.writeUInt32BE(frame.byteLength, 0)
      frames++
      await append([len, frame])
    },
    async close() {
      if (closed) return
      closed = true
      try {
        await tail
        await fh.sync()
      } finally {
        await fh.close()
      }
    },
  }
}

// ───────────── reading ─────────────

export interface CaptureFrame {
  /** 0-based index of the frame in the file */
  index: number
  /** byte offset of the frame's length prefix */
  offset: number
  bytes: Uint8Array
}

export interface CaptureReader {
  readonly header: CaptureHeader
  /** bytes of magic + header: where the first frame starts */
  readonly dataOffset: number
  /** Streams the frames in order; a truncated or garbled tail throws `CaptureFormatError` after the good frames. */
  frames(): AsyncGenerator<CaptureFrame>
  close(): Promise<void>
}

/** A buffered sequential reader over a file handle: never holds more than one request plus a chunk. */
class ChunkReader {
  private buf = Buffer.alloc(0)
  private start = 0
  private filePos: number
  private eof = false
  /** file offset of `buf[start]` */
  offset: number
  private readonly fh: FileHandle
  constructor(fh: FileHandle, position: number) {
    this.fh = fh
    this.filePos = position
    this.offset = position
  }

  /** Up to `n` bytes (fewer only at end of file). */
  async read(n: number): Promise<Buffer> {
    while (this.buf.byteLength - this.start < n && !this.eof) {
      const want = Math.max(READ_CHUNK, n - (this.buf.byteLength - this.start))
      const chunk = Buffer.allocUnsafe(want)
      const { bytesRead } = await this.fh.read(chunk, 0, want, this.filePos)
      if (bytesRead === 0) {
        this.eof = true
        break
      }
      this.filePos += bytesRead
      // keep only the unread part, then append
      this.buf = Buffer.concat([this.buf.subarray(this.start), chunk.subarray(0, bytesRead)])
      this.start = 0
    }
    const end = Math.min(this.start + n, this.buf.byteLength)
    const out = this.buf.subarray(this.start, end)
    this.start = end
    this.offset += out.byteLength
    return out
  }
}

/**
 * Opens a capture file and checks its magic and header.
 * @throws {CaptureFormatError} when the file is not a capture of a version this code reads
 */
export async function openCapture(path: string, opts: { maxEntryBytes?: number } = {}): Promise<CaptureReader> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    throw new CaptureFormatError('unreadable', `cannot open capture file ${path}: ${(err as Error).message}`, undefined, { cause: err })
  }
  try {
    const reader = new ChunkReader(fh, 0)
    const magic = await reader.read(CAPTURE_MAGIC.byteLength)
    if (magic.byteLength < CAPTURE_MAGIC.byteLength || !magic.equals(CAPTURE_MAGIC)) {
      throw new CaptureFormatError('not-a-capture', `${path} is not a malfestio-mirror capture file (bad magic bytes)`, 0)
    }
    const lenBytes = await reader.read(4)
    if (lenBytes.byteLength < 4) throw new CaptureFormatError('truncated', `${path}: truncated in the header length at byte ${reader.offset}`, reader.offset)
    const hlen = lenBytes.readUInt32BE(0)
    if (hlen === 0 || hlen > MAX_HEADER_BYTES) {
      throw new CaptureFormatError('bad-header', `${path}: header length ${hlen} is not plausible (garbled file?)`, CAPTURE_MAGIC.byteLength)
    }
    const json = await reader.read(hlen)
    if (json.byteLength < hlen) throw new CaptureFormatError('truncated', `${path}: truncated in the header (${json.byteLength} of ${hlen} bytes)`, reader.offset)
    let header: CaptureHeader
    try {
      header = JSON.parse(json.toString('utf8'))
    } catch (err) {
      throw new CaptureFormatError('bad-header', `${path}: header is not JSON: ${(err as Error).message}`, CAPTURE_MAGIC.byteLength + 4)
    }
    if (typeof header !== 'object' || header === null || header.format !== CAPTURE_FORMAT) {
      throw new CaptureFormatError('bad-header', `${path}: header does not name the ${CAPTURE_FORMAT} format`, CAPTURE_MAGIC.byteLength + 4)
    }
    if (header.version !== CAPTURE_VERSION) {
      throw new CaptureFormatError('unsupported-version', `${path}: capture format version ${String(header.version)} is not supported (this program reads ${CAPTURE_VERSION})`)
    }
    if (typeof header.source !== 'string' || !(header.cursor === null || Number.isSafeInteger(header.cursor))) {
      throw new CaptureFormatError('bad-header', `${path}: header lacks a source URL or a valid cursor`, CAPTURE_MAGIC.byteLength + 4)
    }
    const dataOffset = reader.offset
    const max = opts.maxEntryBytes ?? MAX_ENTRY_BYTES
    // a garbled length prefix must not make us allocate what the file does not hold
    const size = (await fh.stat()).size
    let started = false
    return {
      header,
      dataOffset,
      async *frames() {
        if (started) throw new Error('capture frames can be read once per open')
        started = true
        const read = async (n: number): Promise<Buffer> => {
          try {
            return await reader.read(n)
          } catch (err) {
            throw new CaptureFormatError('unreadable', `${path}: read failed at byte ${reader.offset}: ${(err as Error).message}`, reader.offset, { cause: err })
          }
        }
        for (let index = 0; ; index++) {
          const offset = reader.offset
          const len = await read(4)
          if (len.byteLength === 0) return
          if (len.byteLength < 4) {
            throw new CaptureFormatError('truncated', `${path}: truncated at byte ${offset}: frame #${index} length prefix has ${len.byteLength} of 4 bytes`, offset)
          }
          const n = len.readUInt32BE(0)
          if (n === 0 || n > max) {
            throw new CaptureFormatError(
              n === 0 ? 'garbled' : 'frame-too-big',
              `${path}: garbled at byte ${offset}: frame #${index} claims ${n} bytes (limit ${max})`,
              offset,
            )
          }
          if (offset + 4 + n > size) {
            throw new CaptureFormatError('truncated', `${path}: truncated at byte ${offset}: frame #${index} has ${Math.max(0, size - offset - 4)} of ${n} bytes`, offset)
          }
          const bytes = await read(n)
          if (bytes.byteLength < n) {
            throw new CaptureFormatError('truncated', `${path}: truncated at byte ${offset}: frame #${index} has ${bytes.byteLength} of ${n} bytes`, offset)
          }
          // a copy: the reader's buffer is reused by the next read
          yield { index, offset, bytes: new Uint8Array(bytes) }
        }
      },
      close: () => fh.close(),
    }
  } catch (err) {
    await fh.close().catch(() => undefined)
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') throw new CaptureFormatError('not-a-capture', `${path} is a directory`)
    if (err instanceof CaptureFormatError) throw err
    throw new CaptureFormatError('unreadable', `cannot read capture file ${path}: ${(err as Error).message}`, undefined, { cause: err })
  }
}

/** Reads only the header (for `replay --file` defaults). */
export async function readCaptureHeader(path: string): Promise<CaptureHeader> {
  const r = await openCapture(path)
  await r.close()
  return r.header
}
