/**
 * Hostile frames for the fuzz tests: fast-check arbitraries that describe a mutation of a real
 * captured frame (bit flips, truncations, wrong types, huge CBOR lengths, deep nesting, CAR headers
 * and sections that lie, oversized blocks and frames), and `applyMutations` that performs them.
 * A mutation is plain data, so fast-check prints and shrinks a failing case.
 */
import fc from 'fast-check'
import { BytesWrapper, decodeFirst, encode, toCidLink } from '@atcute/cbor'
import { create as createCid, decode as decodeCid, decodeFirst as decodeFirstCid, fromDigest, fromString as cidFromString } from '@atcute/cid'
import { varint } from 'multiformats'

// ───────────── the mutations ─────────────

export type CarLie =
  | 'roots-none' | 'roots-two' | 'root-other' | 'version-2' | 'header-not-map' | 'header-len-huge'
  | 'section-len-huge' | 'section-len-short' | 'section-len-zero' | 'cid-codec' | 'cid-digest'
  | 'drop-block' | 'dup-block' | 'swap-data' | 'extra-block' | 'oversized-block' | 'truncate'

export type Mutation =
  | { kind: 'flip'; bits: number[] }
  | { kind: 'truncate'; at: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'huge-length'; at: number; major: 2 | 3 | 4 | 5; width: 4 | 8 }
  | { kind: 'field'; path: FieldPath; value: Value }
  | { kind: 'nest'; path: FieldPath; depth: number; map: boolean }
  | { kind: 'car'; lie: CarLie; i: number; j: number }
  | { kind: 'oversize'; what: 'frame' | 'ops' | 'record' }
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'concat' }

/** Where a field mutation lands: the header, a body key, or a key of one op. */
export type FieldPath = { in: 'header' | 'body'; key: string } | { in: 'op'; i: number; key: string }

/** A value of some CBOR type (a description: `applyMutations` builds it). */
export type Value =
  | { t: 'delete' } | { t: 'null' } | { t: 'bool'; v: boolean } | { t: 'int'; v: number } | { t: 'str'; v: string }
  | { t: 'big-str'; n: number } | { t: 'bytes'; v: Uint8Array } | { t: 'cid'; seed: number } | { t: 'array'; v: number[] }
  | { t: 'map'; v: Record<string, number> }

const BODY_KEYS = ['seq', 'repo', 'did', 'rev', 'since', 'commit', 'blocks', 'ops', 'prevData', 'time', 'handle', 'active', 'status', 'name', 'message', 'error', 'blobs', 'tooBig']
const OP_KEYS = ['action', 'path', 'cid', 'prev']

const value: fc.Arbitrary<Value> = fc.oneof(
  fc.constant<Value>({ t: 'delete' }),
  fc.constant<Value>({ t: 'null' }),
  fc.boolean().map((v): Value => ({ t: 'bool', v })),
  fc.oneof(fc.integer(), fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER)).map((v): Value => ({ t: 'int', v })),
  fc.oneof(
    fc.string({ maxLength: 24 }),
    fc.constantFrom('', 'create', 'update', 'delete', 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'did:web:localhost', '#commit', 'org.stormlightlabs.malfestio.deck/3k', 'a/b/c', '../../etc/passwd', "'; DROP TABLE records; --", '3zzzzzzzzzzzz', '2222222222222'),
  ).map((v): Value => ({ t: 'str', v })),
  { arbitrary: fc.integer({ min: 10_000, max: 100_000 }).map((n): Value => ({ t: 'big-str', n })), weight: 1 },
  fc.uint8Array({ maxLength: 48 }).map((v): Value => ({ t: 'bytes', v })),
  fc.nat().map((seed): Value => ({ t: 'cid', seed })),
  fc.array(fc.integer(), { maxLength: 4 }).map((v): Value => ({ t: 'array', v })),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.integer(), { maxKeys: 3 }).map((v): Value => ({ t: 'map', v })),
)

const fieldPath: fc.Arbitrary<FieldPath> = fc.oneof(
  { arbitrary: fc.constantFrom('op', 't').map((key): FieldPath => ({ in: 'header', key })), weight: 1 },
  { arbitrary: fc.constantFrom(...BODY_KEYS).map((key): FieldPath => ({ in: 'body', key })), weight: 4 },
  { arbitrary: fc.record({ i: fc.nat({ max: 8 }), key: fc.constantFrom(...OP_KEYS) }).map(({ i, key }): FieldPath => ({ in: 'op', i, key })), weight: 2 },
)

/** mostly shallow; some deep enough to overflow any recursive walker; a few near the frame limit */
const nestDepth = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 300 }), weight: 10 },
  { arbitrary: fc.integer({ min: 1_000, max: 30_000 }), weight: 9 },
  { arbitrary: fc.integer({ min: 100_000, max: 600_000 }), weight: 1 },
)

const CAR_LIES: CarLie[] = [
  'roots-none', 'roots-two', 'root-other', 'version-2', 'header-not-map', 'header-len-huge', 'section-len-huge',
  'section-len-short', 'section-len-zero', 'cid-codec', 'cid-digest', 'drop-block', 'dup-block', 'swap-data',
  'extra-block', 'oversized-block', 'truncate',
]

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }).map((bits): Mutation => ({ kind: 'flip', bits })), weight: 6 },
  { arbitrary: fc.nat().map((at): Mutation => ({ kind: 'truncate', at })), weight: 3 },
  { arbitrary: fc.record({ at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }).map((m): Mutation => ({ kind: 'overwrite', ...m })), weight: 3 },
  { arbitrary: fc.record({ at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }).map((m): Mutation => ({ kind: 'insert', ...m })), weight: 2 },
  { arbitrary: fc.record({ at: fc.nat(), major: fc.constantFrom(2, 3, 4, 5), width: fc.constantFrom(4, 8) }).map((m): Mutation => ({ kind: 'huge-length', ...(m as { at: number; major: 2 | 3 | 4 | 5; width: 4 | 8 }) })), weight: 3 },
  { arbitrary: fc.record({ path: fieldPath, value }).map((m): Mutation => ({ kind: 'field', ...m })), weight: 8 },
  { arbitrary: fc.record({ path: fieldPath, depth: nestDepth, map: fc.boolean() }).map((m): Mutation => ({ kind: 'nest', ...m })), weight: 2 },
  { arbitrary: fc.record({ lie: fc.constantFrom(...CAR_LIES), i: fc.nat(), j: fc.nat() }).map((m): Mutation => ({ kind: 'car', ...m })), weight: 8 },
  { arbitrary: fc.constantFrom<'frame' | 'ops' | 'record'>('frame', 'ops', 'record').map((what): Mutation => ({ kind: 'oversize', what })), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes): Mutation => ({ kind: 'garbage', bytes })), weight: 1 },
  { arbitrary: fc.constant<Mutation>({ kind: 'concat' }), weight: 1 },
)

/** One to three mutations of one corpus frame. */
export const mutatedFrame = (corpusSize: number) =>
  fc.record({ base: fc.nat({ max: corpusSize - 1 }), mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }) })

// ───────────── performing them ─────────────

type Obj = Record<string, unknown>

/** Header and body of a frame, decoded without any checks (undefined when it does not decode). */
function split(frame: Uint8Array): { header: Obj; body: Obj } | undefined {
  try {
    const [header, rest] = decodeFirst(frame)
    const [body] = decodeFirst(rest)
    if (!isObj(header) || !isObj(body)) return undefined
    return { header: { ...header }, body: { ...body } }
  } catch {
    return undefined
  }
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

const join = (header: unknown, body: unknown): Uint8Array => concat([encode(header), encode(body)])

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))

/** A placeholder value whose encoding can be found and replaced by raw bytes. */
const MARK = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x4d, 0x41, 0x52, 0x4b, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
const MARK_ENCODED = encode(new BytesWrapper(MARK))

export interface Corpus {
  frames: Uint8Array[]
  /** CID strings seen in the corpus (for CID-typed values that point somewhere real) */
  cids: string[]
}

/**
 * Applies the mutations, structural ones first (they re-encode the frame), then nesting and size
 * (after which the frame is too deep or too big to re-encode cheaply), then byte-level ones.
 */
export async function applyMutations(corpus: Corpus, base: number, muts: Mutation[]): Promise<Uint8Array> {
  let f = corpus.frames[base]!
  const ordered = [...muts].sort((a, b) => stage(a) - stage(b))
  for (const m of ordered) f = await applyOne(corpus, f, m, base)
  return f
}

const stage = (m: Mutation): number =>
  m.kind === 'field' || m.kind === 'car' || (m.kind === 'oversize' && m.what !== 'frame') ? 0 : m.kind === 'nest' || m.kind === 'oversize' ? 1 : 2

async function applyOne(corpus: Corpus, f: Uint8Array, m: Mutation, base: number): Promise<Uint8Array> {
  const len = Math.max(1, f.byteLength)
  switch (m.kind) {
    case 'flip': {
      const out = f.slice()
      for (const b of m.bits) if (out.byteLength) out[(b >> 3) % out.byteLength]! ^= 1 << (b & 7)
      return out
    }
    case 'truncate':
      return f.slice(0, m.at % len)
    case 'overwrite': {
      const out = f.slice()
      out.set(m.bytes.subarray(0, Math.max(0, out.byteLength - (m.at % len))), m.at % len)
      return out
    }
    case 'insert':
      return concat([f.subarray(0, m.at % len), m.bytes, f.subarray(m.at % len)])
    case 'huge-length': {
      const head = m.width === 4 ? [(m.major << 5) | 26, 0xff, 0xff, 0xff, 0xf0] : [(m.major << 5) | 27, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]
      const out = f.slice()
      const at = m.at % len
      out.set(head.slice(0, out.byteLength - at), at)
      return out
    }
    case 'garbage':
      return m.bytes
    case 'concat':
      return concat([f, corpus.frames[(base + 1) % corpus.frames.length]!])
  }
  const parts = split(f)
  if (!parts) return f // a structural mutation needs a frame that still splits; leave it as is
  try {
    return await structural(corpus, f, m, parts)
  } catch {
    return f // e.g. re-encoding a value nested 200 000 deep (the encoder recurses): leave it as is
  }
}

async function structural(corpus: Corpus, f: Uint8Array, m: Mutation, { header, body }: { header: Obj; body: Obj }): Promise<Uint8Array> {
  switch (m.kind) {
    case 'field': {
      const v = await build(m.value, corpus)
      setAt(header, body, m.path, v)
      return join(header, body)
    }
    case 'nest': {
      setAt(header, body, m.path, new BytesWrapper(MARK))
      return replaceMark(join(header, body), nested(m.depth, m.map))
    }
    case 'car': {
      const blocks = body.blocks
      if (!(blocks instanceof BytesWrapper)) return f
      body.blocks = new BytesWrapper(await lie(blocks.buf, m.lie, m.i, m.j))
      return join(header, body)
    }
    case 'oversize': {
      if (m.what === 'frame') return concat([f, ZEROS_5MB]) // over the limit, whatever it holds
      if (m.what === 'ops') {
        const ops = Array.isArray(body.ops) ? body.ops : []
        body.ops = Array.from({ length: 201 }, (_, i) => ops[i % Math.max(1, ops.length)] ?? { action: 'create', path: `a/${i}`, cid: null })
        return join(header, body)
      }
      // a 1.1 MB record block, hash-correct, that the first op points at
      const { bytes: big, cid } = await bigRecord()
      if (body.blocks instanceof BytesWrapper) body.blocks = new BytesWrapper(await lie(body.blocks.buf, 'extra-block', 0, 0, big))
      if (Array.isArray(body.ops) && isObj(body.ops[0])) body.ops = [{ ...body.ops[0], cid: toCidLink(cid) }, ...body.ops.slice(1)]
      return join(header, body)
    }
  }
  return f
}

function setAt(header: Obj, body: Obj, path: FieldPath, v: unknown): void {
  let target: Obj
  if (path.in !== 'op') target = path.in === 'header' ? header : body
  else {
    if (!Array.isArray(body.ops) || body.ops.length === 0) return
    const ops = [...body.ops]
    const i = path.i % ops.length
    if (!isObj(ops[i])) return
    ops[i] = { ...(ops[i] as Obj) }
    body.ops = ops
    target = ops[i] as Obj
  }
  if (v === DELETE) delete target[path.key]
  else target[path.key] = v
}

const DELETE = Symbol('delete')

// big values are made once: the fuzz runs 100 000 times
const ZEROS_5MB = new Uint8Array(5_000_001)
let bigRecordMemo: Promise<{ bytes: Uint8Array; cid: Awaited<ReturnType<typeof createCid>> }> | undefined
const bigRecord = () =>
  (bigRecordMemo ??= (async () => {
    const bytes = encode({ $type: 'org.stormlightlabs.malfestio.deck', title: 'x'.repeat(1_100_000) })
    return { bytes, cid: await createCid(0x71, bytes) }
  })())
let oversizedBlockMemo: Promise<{ bytes: Uint8Array; cid: Uint8Array }> | undefined
const oversizedBlock = () =>
  (oversizedBlockMemo ??= (async () => {
    const bytes = encode({ pad: new BytesWrapper(new Uint8Array(2_100_000)) })
    return { bytes, cid: (await createCid(0x71, bytes)).bytes }
  })())

async function build(v: Value, corpus: Corpus): Promise<unknown> {
  switch (v.t) {
    case 'delete':
      return DELETE
    case 'null':
      return null
    case 'bool':
    case 'int':
    case 'str':
      return v.v
    case 'big-str':
      return 'x'.repeat(v.n)
    case 'bytes':
      return new BytesWrapper(v.v)
    case 'cid':
      return toCidLink(cidFromString(corpus.cids[v.seed % corpus.cids.length]!))
    case 'array':
      return v.v
    case 'map':
      return { ...v.v }
  }
}

/** `depth` nested arrays (or single-key maps) around a 0, as raw CBOR: no recursion anywhere. */
function nested(depth: number, map: boolean): Uint8Array {
  const unit = map ? [0xa1, 0x61, 0x61] : [0x81]
  const out = new Uint8Array(depth * unit.length + 1)
  for (let i = 0; i < depth; i++) out.set(unit, i * unit.length)
  return out
}

function replaceMark(bytes: Uint8Array, raw: Uint8Array): Uint8Array {
  const at = Buffer.from(bytes).indexOf(Buffer.from(MARK_ENCODED))
  if (at < 0) return bytes
  return concat([bytes.subarray(0, at), raw, bytes.subarray(at + MARK_ENCODED.byteLength)])
}

// ───────────── CAR lies ─────────────

interface RawCar {
  header: Uint8Array
  sections: { cid: Uint8Array; data: Uint8Array }[]
}

/** Splits a CAR v1 into its header and sections by their varint lengths (no checks: test-side only). */
function splitCar(car: Uint8Array): RawCar | undefined {
  try {
    const [hlen, hl] = varint.decode(car)
    const header = car.subarray(hl, hl + hlen)
    const sections: RawCar['sections'] = []
    let off = hl + hlen
    while (off < car.byteLength) {
      const [slen, sl] = varint.decode(car, off)
      const section = car.subarray(off + sl, off + sl + slen)
      const [cid, rest] = decodeFirstCid(section)
      sections.push({ cid: cid.bytes, data: rest })
      off += sl + slen
    }
    return { header, sections }
  } catch {
    return undefined
  }
}

const uvarint = (n: number): Uint8Array => {
  const out = new Uint8Array(varint.encodingLength(n))
  varint.encodeTo(n, out)
  return out
}

function joinCar(car: RawCar, lens: { header?: number; section?: [number, number] } = {}): Uint8Array {
  const parts: Uint8Array[] = [uvarint(lens.header ?? car.header.byteLength), car.header]
  car.sections.forEach((s, i) => {
    const real = s.cid.byteLength + s.data.byteLength
    parts.push(uvarint(lens.section?.[0] === i ? lens.section[1] : real), s.cid, s.data)
  })
  return concat(parts)
}

async function lie(car: Uint8Array, what: CarLie, i: number, j: number, extra?: Uint8Array): Promise<Uint8Array> {
  const raw = splitCar(car)
  if (!raw || raw.sections.length === 0) return car
  const n = raw.sections.length
  const si = i % n
  const sj = j % n
  const cidOf = (k: number) => toCidLink(decodeCid(raw.sections[k]!.cid))
  const roots = (header: Obj) => {
    raw.header = encode(header)
  }
  switch (what) {
    case 'roots-none':
      roots({ version: 1, roots: [] })
      return joinCar(raw)
    case 'roots-two':
      roots({ version: 1, roots: [cidOf(0), cidOf(si)] })
      return joinCar(raw)
    case 'root-other':
      roots({ version: 1, roots: [cidOf(si)] })
      return joinCar(raw)
    case 'version-2':
      roots({ version: 2, roots: [cidOf(0)] })
      return joinCar(raw)
    case 'header-not-map':
      raw.header = encode([1, 2, 3])
      return joinCar(raw)
    case 'header-len-huge':
      return joinCar(raw, { header: 2 ** 31 + i })
    case 'section-len-huge':
      return joinCar(raw, { section: [si, 2 ** 31 + j] })
    case 'section-len-short': {
      const real = raw.sections[si]!.cid.byteLength + raw.sections[si]!.data.byteLength
      return joinCar(raw, { section: [si, Math.max(0, real - 1 - (j % real))] })
    }
    case 'section-len-zero':
      return joinCar(raw, { section: [si, 0] })
    case 'cid-codec': {
      const c = decodeCid(raw.sections[si]!.cid)
      raw.sections[si] = { ...raw.sections[si]!, cid: fromDigest(0x55, c.digest.contents).bytes }
      return joinCar(raw)
    }
    case 'cid-digest': {
      const cid = raw.sections[si]!.cid.slice()
      cid[cid.byteLength - 1 - (j % 32)]! ^= 0x01
      raw.sections[si] = { ...raw.sections[si]!, cid }
      return joinCar(raw)
    }
    case 'drop-block':
      raw.sections.splice(si, 1)
      return joinCar(raw)
    case 'dup-block':
      raw.sections.splice(sj, 0, raw.sections[si]!)
      return joinCar(raw)
    case 'swap-data': {
      const a = raw.sections[si]!
      const b = raw.sections[sj]!
      raw.sections[si] = { cid: a.cid, data: b.data }
      raw.sections[sj] = { cid: b.cid, data: a.data }
      return joinCar(raw)
    }
    case 'extra-block': {
      const data = extra ?? encode({ extra: i })
      raw.sections.push({ cid: (await createCid(0x71, data)).bytes, data })
      return joinCar(raw)
    }
    case 'oversized-block': {
      const { bytes, cid } = await oversizedBlock()
      raw.sections.push({ cid, data: bytes })
      return joinCar(raw)
    }
    case 'truncate':
      return car.slice(0, Math.max(0, car.byteLength - 1 - (i % car.byteLength)))
  }
}
