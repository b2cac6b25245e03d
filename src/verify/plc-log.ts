/**
 * Verification of a did:plc operation log (`GET {plc}/{did}/log/audit`), so the mirror needs no
 * trust in the PLC directory for who may sign a DID's commits. Pure: JSON in, proven facts out.
 *
 * The log is replayed the way the directory itself accepted it: the genesis operation must hash to
 * the DID and be signed by one of its own rotation keys; every later operation must name an earlier
 * one as `prev` and be signed by a rotation key of that predecessor. An operation whose `prev` is not
 * the newest valid one forks the log: it is a recovery, valid only if signed by a rotation key of
 * higher priority than the signer of the first operation it nullifies, and made within 72 hours of
 * that operation. The 72 hours are judged on the operations' own `createdAt` (the directory's
 * timestamps), never on today's clock: `@did-plc/lib`'s `assureValidNextOp` uses `Date.now()`, which
 * would refuse every old recovery when a log is re-verified later, so that step is done here with the
 * library's parts (`assureValidCreationOp`, `assureValidOp`, `assureValidSig`, `normalizeOp`); where they
 * decompress keys or check signatures in JavaScript, the project's native check answers first and the
 * library decides what it does not accept (`assureValidOp`, `signerOf`).
 * The nullified flags the directory serves must equal the ones the replay computes.
 *
 * What comes out: the ordered history of the DID's atproto signing keys (each with the operation that
 * made it valid and the one that ended it), and the handle, PDS and key of the last valid operation.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as plc from '@did-plc/lib'
import { assertUsableDidKey, verifySignature } from './signature.ts'

/** How long after an operation a higher-priority rotation key may still nullify it. */
export const RECOVERY_WINDOW_MS = 72 * 60 * 60 * 1000

export type PlcLogErrorCode =
  | 'bad-structure' // not an audit log, or an entry that is not a PLC operation
  | 'wrong-did' // an entry is for another DID
  | 'genesis-hash' // the genesis operation does not hash to the DID (or is not a genesis operation)
  | 'bad-signature' // an operation is not signed by a rotation key its predecessor allows
  | 'misordered' // prev missing or unknown, an operation after a tombstone, createdAt going backwards
  | 'cid-mismatch' // the CID the directory gives an operation is not the hash of the operation
  | 'late-recovery' // a nullification more than 72 h after the operation it nullifies
  | 'nullified-mismatch' // the directory's nullified flags differ from what the log proves
  | 'unsupported-key' // a key in an operation is not a usable did:key
  | 'bad-operation' // too many / no rotation keys, create op with a prev, …

/** The log does not prove the DID's identity; `index` is the audit-log entry at fault. */
export class PlcLogError extends Error {
  readonly code: PlcLogErrorCode
  readonly did: string
  readonly index: number | null
  constructor(code: PlcLogErrorCode, did: string, index: number | null, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${did}${index === null ? '' : ` op #${index}`}: ${message}`, options)
    this.name = 'PlcLogError'
    this.code = code
    this.did = did
    this.index = index
  }
}

/** One operation, as the audit log names it. */
export interface PlcOpRef {
  cid: string
  /** the directory's timestamp (ISO 8601) */
  createdAt: string
}

/** A period during which one atproto signing key was the DID's key, per the verified log. */
export interface KeyEpoch {
  /** 0 for the genesis key; increases with every change of key */
  index: number
  /** did:key, compressed multicodec form */
  signingKey: string
  /** the operation that made this key valid */
  op: PlcOpRef
  /** the operation that replaced it (another key, no key, or a tombstone); null while current */
  endedBy: PlcOpRef | null
}

export interface VerifiedPlcLog {
  did: string
  /** signing-key history, oldest first (nullified operations take no part) */
  keys: KeyEpoch[]
  /** the key of the last valid operation; null when tombstoned or when it names no atproto key */
  signingKey: string | null
  /** first `at://` alias of the last valid operation, lowercased */
  handle?: string
  /** `atproto_pds` endpoint of the last valid operation */
  pds?: string
  rotationKeys: string[]
  /** the last valid operation */
  lastOp: PlcOpRef
  /** set when the last valid operation is a tombstone: the identity has ended */
  tombstone: PlcOpRef | null
  /** entries in the audit log */
  entries: number
  /** CIDs of the operations nullified by a recovery */
  nullified: string[]
}

type Op = plc.CompatibleOpOrTombstone
interface Accepted {
  op: Op
  cid: string
  createdAt: string
  t: number
}

/**
 * Verifies a did:plc audit log and derives the key history and current identity from it.
 * @param did the DID the log must prove
 * @param log the parsed JSON body of `GET {plc}/{did}/log/audit`
 * @throws {PlcLogError}
 */
export async function verifyPlcAuditLog(did: string, log: unknown): Promise<VerifiedPlcLog> {
  if (!Array.isArray(log) || log.length === 0) throw new PlcLogError('bad-structure', did, null, 'not a non-empty array of operations')
  let chain: Accepted[] = []
  const nullified = new Set<string>()
  const cids: string[] = []
  let lastT = -Infinity
  for (const [i, entry] of log.entries()) {
    function fail(code: PlcLogErrorCode, message: string, cause?: unknown): never {
      throw new PlcLogError(code, did, i, message, cause === undefined ? undefined : { cause })
    }
    if (!entry || typeof entry !== 'object') fail('bad-structure', 'entry is not an object')
    const { did: entryDid, operation, cid, createdAt } = entry as Record<string, unknown>
    if (entryDid !== undefined && entryDid !== did) fail('wrong-did', `entry is for ${String(entryDid)}`)
    if (typeof cid !== 'string' || typeof createdAt !== 'string') fail('bad-structure', 'entry lacks cid or createdAt')
    const t = Date.parse(createdAt as string)
    if (Number.isNaN(t)) fail('bad-structure', `createdAt ${String(createdAt)} is not a time`)
    // the directory appends in time order: a log whose times go backwards has been reshuffled
    if (t < lastT) fail('misordered', `createdAt ${String(createdAt)} is before the previous operation's`)
    lastT = t
    const schema = i === 0 ? plc.def.compatibleOp : plc.def.opOrTombstone
    if (!schema.safeParse(operation).success) fail('bad-structure', 'not a PLC operation')
    const op = operation as Op
    const computed = await cidForOp(op).catch((err) => fail('bad-structure', 'operation cannot be encoded as DAG-CBOR', err))
    if (computed !== cid) fail('cid-mismatch', `the directory calls it ${String(cid)}, it hashes to ${computed}`)
    cids.push(computed)
    const accepted: Accepted = { op, cid: computed, createdAt: createdAt as string, t }

    try {
      if (i === 0) {
        await assureValidGenesis(did, op)
        chain = [accepted]
        continue
      }
      if (!op.prev) fail('misordered', 'a later operation without prev')
      const at = chain.findIndex((c) => c.cid === op.prev)
      if (at < 0) fail('misordered', `prev ${op.prev} is not a valid earlier operation`)
      const base = chain[at]!
      if (isTombstone(base.op)) fail('misordered', 'operation after a tombstone')
      await assureValidOp(isTombstone(op) ? op : plc.normalizeOp(op))
      const allowed = plc.normalizeOp(base.op).rotationKeys
      const disputed = chain.slice(at + 1)
      if (disputed.length === 0) {
        await signerOf(allowed, op)
      } else {
        // a fork: recovery by a stronger rotation key, within the window, judged on createdAt
        const first = disputed[0]!
        const disputedSigner = await signerOf(allowed, first.op)
        const stronger = allowed.slice(0, allowed.indexOf(disputedSigner))
        if (stronger.length === 0) fail('bad-signature', `fork of ${first.cid}, which was signed by the strongest rotation key`)
        await signerOf(stronger, op)
        const lapse = t - first.t
        if (lapse > RECOVERY_WINDOW_MS) {
          fail('late-recovery', `nullifies ${first.cid} ${(lapse / 3_600_000).toFixed(1)} h after it (limit 72 h)`)
        }
        for (const d of disputed) nullified.add(d.cid)
        chain = chain.slice(0, at + 1)
      }
      chain.push(accepted)
    } catch (err) {
      if (err instanceof PlcLogError) throw err
      throw fromLibraryError(did, i, err)
    }
  }

  for (const [i, entry] of (log as Record<string, unknown>[]).entries()) {
    const served = entry.nullified === true
    if (served !== nullified.has(cids[i]!)) {
      throw new PlcLogError('nullified-mismatch', did, i, `the directory says nullified=${served}, the log proves the opposite`)
    }
  }
  return summarize(did, chain, log.length, [...nullified])
}

function summarize(did: string, chain: Accepted[], entries: number, nullified: string[]): VerifiedPlcLog {
  const keys: KeyEpoch[] = []
  const ref = (a: Accepted): PlcOpRef => ({ cid: a.cid, createdAt: a.createdAt })
  let tombstone: PlcOpRef | null = null
  let doc: plc.Operation | null = null
  for (const a of chain) {
    const open = keys.at(-1)?.endedBy === null ? keys.at(-1)! : undefined
    if (isTombstone(a.op)) {
      if (open) open.endedBy = ref(a)
      tombstone = ref(a)
      doc = null
      continue
    }
    doc = plc.normalizeOp(a.op)
    const key = doc.verificationMethods.atproto || undefined
    if (open && open.signingKey === key) continue
    if (open) open.endedBy = ref(a)
    if (key) keys.push({ index: keys.length, signingKey: key, op: ref(a), endedBy: null })
  }
  const last = chain.at(-1)!
  const handle = doc?.alsoKnownAs.find((a) => a.startsWith('at://'))?.slice('at://'.length).toLowerCase()
  const pdsService = doc?.services.atproto_pds
  const pds = pdsService?.type === 'AtprotoPersonalDataServer' ? pdsService.endpoint : undefined
  return {
    did,
    keys,
    signingKey: tombstone || !doc?.verificationMethods.atproto ? null : doc.verificationMethods.atproto,
    ...(handle ? { handle } : {}),
    ...(pds ? { pds } : {}),
    rotationKeys: doc?.rotationKeys ?? [],
    lastOp: ref(last),
    tombstone,
    entries,
    nullified,
  }
}

/**
 * `plc.assureValidCreationOp` with the signature check of `signerOf`: the genesis operation is signed
 * by one of its own rotation keys, hashes to the DID, and has no prev.
 */
async function assureValidGenesis(did: string, op: Op): Promise<void> {
  if (isTombstone(op)) throw new plc.MisorderedOperationError()
  const normalized = plc.normalizeOp(op)
  await assureValidOp(normalized)
  await signerOf(normalized.rotationKeys, op)
  if (!/^did:plc:[a-z2-7]{24}$/.test(did)) throw new plc.ImproperlyFormattedDidError('not did:plc: + 24 base32 characters')
  const expected = await plc.didForCreateOp(op, 64)
  if (!expected.startsWith(did)) throw new plc.GenesisHashError(expected)
  if (op.prev !== null) throw new plc.ImproperOperationError('expected null prev on create', op)
}

/**
 * `plc.assureValidOp`: every key of the operation is a usable did:key, and it has 1 to 5 rotation
 * keys. The library parses each key with @atproto/crypto, which decompresses the point in JavaScript
 * (@noble): about 0.9 s of the main thread per 1 580 new DIDs on the bench, more than the rest of
 * the log's checks. `assertUsableDidKey` (native: libsecp256k1 or OpenSSL) accepts the same keys
 * (compressed K-256 and P-256 points on their curves) and caches them for the signature checks that
 * follow. An operation it does not pass in full goes to the library, which decides and names the error.
 */
async function assureValidOp(op: plc.Operation | plc.Tombstone): Promise<void> {
  if (!isTombstone(op)) {
    const keys = [...Object.values(op.verificationMethods), ...op.rotationKeys]
    const counted = op.rotationKeys.length >= 1 && op.rotationKeys.length <= 5
    if (counted && keys.every(usableDidKey)) return
  }
  await plc.assureValidOp(op)
}

function usableDidKey(key: string): boolean {
  try {
    assertUsableDidKey(key)
    return true
  } catch {
    return false
  }
}

/**
 * Which of `allowed` (in priority order) signed `op` — `plc.assureValidSig`'s answer. A signature
 * verifies under at most one key, so the fast low-S verifier (node:crypto) is asked first, and the
 * library only when it finds none (it also accepts the high-S signatures the fast path refuses).
 * @throws {plc.InvalidSignatureError}
 */
async function signerOf(allowed: string[], op: Op): Promise<string> {
  const { sig, ...unsigned } = op as Op & { sig: string }
  const sigBytes = Buffer.from(sig, 'base64url')
  if (sigBytes.toString('base64url') === sig) {
    const data = dagCbor.encode(unsigned)
    for (const key of allowed) {
      try {
        if (verifySignature(key, data, sigBytes)) return key
      } catch {
        break // a key the fast path cannot load: let the library decide
      }
    }
  }
  return plc.assureValidSig(allowed, op)
}

/** The CID the directory gives an operation: CIDv1, dag-cbor, sha-256 of the operation as served. */
export async function cidForOp(op: unknown): Promise<string> {
  const bytes = dagCbor.encode(op)
  return CID.create(1, dagCbor.code, await sha256.digest(bytes)).toString()
}

const isTombstone = (op: Op): op is plc.Tombstone => (op as { type?: string }).type === 'plc_tombstone'

function fromLibraryError(did: string, index: number, err: unknown): PlcLogError {
  const e = err as Error
  const code: PlcLogErrorCode =
    err instanceof plc.GenesisHashError || err instanceof plc.ImproperlyFormattedDidError
      ? 'genesis-hash'
      : err instanceof plc.InvalidSignatureError
        ? 'bad-signature'
        : err instanceof plc.MisorderedOperationError
          ? index === 0
            ? 'genesis-hash'
            : 'misordered'
          : err instanceof plc.UnsupportedKeyError
            ? 'unsupported-key'
            : err instanceof plc.LateRecoveryError
              ? 'late-recovery'
              : 'bad-operation'
  // the library's messages embed whole operations: keep ours short
  const message =
    code === 'bad-signature'
      ? 'not signed by a rotation key the previous operation allows'
      : code === 'genesis-hash'
        ? `the genesis operation does not hash to the DID (${e.message.slice(0, 160)})`
        : e.message.slice(0, 200)
  return new PlcLogError(code, did, index, message, { cause: err })
}
