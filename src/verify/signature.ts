/**
 * Signature verification for atproto keys (did:key, P-256 and secp256k1). atproto signatures are
 * 64-byte compact (r‖s) over sha-256 and must be low-S; the rule is checked here for both engines.
 *
 * Engines, fastest first, each measured on the bench machine (one core):
 * - secp256k1 through libsecp256k1 (the `secp256k1` package's N-API prebuild): ≈ 19 000/s;
 * - both curves through node:crypto with cached KeyObjects: ≈ 2 100–2 900/s K-256, ≈ 9 000/s P-256.
 * K-256 is most of the network, and was half the verification thread's time through node:crypto.
 * Where the native module cannot load, node:crypto does K-256 too; it stays the second oracle in tests
 * beside `@atproto/crypto`.
 */
import { ECDH, createPublicKey, hash, verify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { parseDidKey } from '@atcute/crypto'

/** The part of the `secp256k1` package's native binding used here. */
interface Libsecp256k1 {
  /** throws on a signature whose r or s is not in [1, n) or on a key that is not a curve point */
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, publicKey: Uint8Array): boolean
  /** throws on a key that is not a curve point */
  publicKeyConvert(publicKey: Uint8Array, compressed: boolean): Uint8Array
}

function loadLibsecp256k1(): { lib: Libsecp256k1 | null; failure: string | null } {
  if (process.env.MALFESTIO_SIGNATURE_ENGINE === 'node:crypto') return { lib: null, failure: null }
  try {
    // `secp256k1/bindings` is the native module alone: the package's main entry would fall back to
    // elliptic (pure JS, slower than node:crypto) when the prebuild does not load.
    return { lib: createRequire(import.meta.url)('secp256k1/bindings') as Libsecp256k1, failure: null }
  } catch (err) {
    return { lib: null, failure: (err as Error).message.split('\n', 1)[0]! }
  }
}

const { lib: libsecp256k1, failure: libsecp256k1Failure } = loadLibsecp256k1()

export type SignatureEngine = 'libsecp256k1' | 'node:crypto'

/** The engine that verifies secp256k1 signatures in this process (P-256 is always node:crypto). */
export const secp256k1Engine: SignatureEngine = libsecp256k1 ? 'libsecp256k1' : 'node:crypto'

/** Why libsecp256k1 is not in use when it was not asked away (MALFESTIO_SIGNATURE_ENGINE), else null. */
export const secp256k1EngineFailure: string | null = libsecp256k1Failure

interface Curve {
  name: 'prime256v1' | 'secp256k1'
  jwkCrv: 'P-256' | 'secp256k1'
  halfOrder: bigint
}

/** by @atcute/crypto's key type (the did:key multicodec it read) */
const CURVES: Record<'p256' | 'secp256k1', Curve> = {
  p256: {
    name: 'prime256v1',
    jwkCrv: 'P-256',
    halfOrder: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n >> 1n,
  },
  secp256k1: {
    name: 'secp256k1',
    jwkCrv: 'secp256k1',
    halfOrder: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n >> 1n,
  },
}

interface PublicKey {
  curve: Curve
  /** uncompressed SEC1 point (65 bytes): libsecp256k1 parses it without a square root */
  point: Buffer
  /** built on first use: with libsecp256k1, K-256 keys never need one */
  keyObject?: KeyObject
}

const KEY_CACHE_MAX = 50_000
const keyCache = new Map<string, PublicKey>()

/** Error for a key that cannot be used at all (unknown algorithm, malformed did:key). */
export class UnsupportedKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UnsupportedKeyError'
  }
}

/**
 * A did:key's curve and its compressed public key (33 bytes), read by @atcute/crypto's `parseDidKey`.
 * @atproto/crypto's `parseDidKey` reads the same bytes and then decompresses the point in JavaScript
 * (@noble), which cost more than the signature checks of a stream's first thousands of DIDs;
 * `loadKey` does that natively instead (libsecp256k1 for K-256, else OpenSSL). (@atproto/crypto's
 * entry also loads @noble/curves: ≈ 5 MB of RSS in the verification thread, which needs none of it.)
 * Only the compressed form is accepted, as @atproto/crypto does: a usable key has one spelling, so
 * keys from PLC logs and DID documents compare as strings.
 * @throws {UnsupportedKeyError}
 */
function didKeyBytes(didKey: string): { curve: Curve; bytes: Uint8Array } {
  let parsed: ReturnType<typeof parseDidKey>
  try {
    parsed = parseDidKey(didKey) // did:key:z…, base58btc, and a P-256 or K-256 multicodec, else it throws
  } catch (err) {
    throw new UnsupportedKeyError(`not a usable did:key: ${(err as Error).message}`, { cause: err })
  }
  const curve = CURVES[parsed.type]
  const bytes = parsed.publicKeyBytes
  if (bytes.byteLength !== 33) throw new UnsupportedKeyError(`not a usable did:key: ${bytes.byteLength}-byte ${curve.jwkCrv} key (a compressed point has 33)`)
  return { curve, bytes }
}

function loadKey(didKey: string): PublicKey {
  const hit = keyCache.get(didKey)
  if (hit) return hit
  const { curve, bytes } = didKeyBytes(didKey)
  let point: Buffer
  try {
    // also proves the bytes are a point on the curve; libsecp256k1 decompresses a K-256 point in
    // 7 µs against OpenSSL's 29 (the bench machine), which counts for the keys of every new DID's PLC log
    if (libsecp256k1 && curve.name === 'secp256k1') {
      const p = libsecp256k1.publicKeyConvert(bytes, false)
      point = Buffer.from(p.buffer, p.byteOffset, p.byteLength)
    } else {
      point = ECDH.convertKey(bytes, curve.name, undefined, undefined, 'uncompressed') as Buffer
    }
  } catch (err) {
    throw new UnsupportedKeyError(`not a usable did:key: not a ${curve.jwkCrv} public key (${(err as Error).message})`, { cause: err })
  }
  const entry: PublicKey = { curve, point }
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
  keyCache.set(didKey, entry)
  return entry
}

/**
 * Throws unless `didKey` is a K-256 or P-256 did:key whose point is on its curve (and caches it).
 * @throws {UnsupportedKeyError}
 */
export function assertUsableDidKey(didKey: string): void {
  loadKey(didKey)
}

function keyObjectOf(k: PublicKey): KeyObject {
  k.keyObject ??= createPublicKey({
    key: { kty: 'EC', crv: k.curve.jwkCrv, x: k.point.subarray(1, 33).toString('base64url'), y: k.point.subarray(33, 65).toString('base64url') },
    format: 'jwk',
  })
  return k.keyObject
}

const toBigInt = (bytes: Uint8Array): bigint => BigInt('0x' + Buffer.from(bytes).toString('hex'))

/**
 * Verifies a compact (r‖s) ECDSA signature over sha-256(`data`) with an atproto did:key.
 * Returns false for any signature that atproto does not accept (wrong length, DER, high-S, wrong key).
 * @throws {UnsupportedKeyError} when the key itself is unusable
 */
export function verifySignature(didKey: string, data: Uint8Array, sig: Uint8Array): boolean {
  return verifyWith(libsecp256k1, didKey, data, sig)
}

/** {@link verifySignature} with node:crypto alone: the fallback engine, and an oracle in tests. */
export function verifySignatureNodeCrypto(didKey: string, data: Uint8Array, sig: Uint8Array): boolean {
  return verifyWith(null, didKey, data, sig)
}

function verifyWith(native: Libsecp256k1 | null, didKey: string, data: Uint8Array, sig: Uint8Array): boolean {
  const k = loadKey(didKey)
  const { curve, point } = k
  if (sig.byteLength !== 64) return false
  if (toBigInt(sig.subarray(32)) > curve.halfOrder) return false
  if (native && curve.name === 'secp256k1') {
    try {
      return native.ecdsaVerify(sig, hash('sha256', data, 'buffer'), point)
    } catch {
      // r or s out of range: not a signature atproto accepts (node:crypto answers false too)
      return false
    }
  }
  return verify('sha256', data, { key: keyObjectOf(k), dsaEncoding: 'ieee-p1363' }, sig)
}
