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
import { parseDidKey, P256_JWT_ALG, SECP256K1_JWT_ALG } from '@atproto/crypto'

/** The part of the `secp256k1` package's native binding used here. */
interface Libsecp256k1 {
  /** throws on a signature whose r or s is not in [1, n) or on a key that is not a curve point */
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, publicKey: Uint8Array): boolean
}

function loadLibsecp256k1(): Libsecp256k1 | null {
  if (process.env.MALFESTIO_SIGNATURE_ENGINE === 'node:crypto') return null
  try {
    // `secp256k1/bindings` is the native module alone: the package's main entry would fall back to
    // elliptic (pure JS, slower than node:crypto) when the prebuild does not load.
    return createRequire(import.meta.url)('secp256k1/bindings') as Libsecp256k1
  } catch {
    return null
  }
}

const libsecp256k1 = loadLibsecp256k1()

export type SignatureEngine = 'libsecp256k1' | 'node:crypto'

/** The engine that verifies secp256k1 signatures in this process (P-256 is always node:crypto). */
export const secp256k1Engine: SignatureEngine = libsecp256k1 ? 'libsecp256k1' : 'node:crypto'

interface Curve {
  name: 'prime256v1' | 'secp256k1'
  jwkCrv: 'P-256' | 'secp256k1'
  halfOrder: bigint
}

const CURVES: Record<string, Curve> = {
  [P256_JWT_ALG]: {
    name: 'prime256v1',
    jwkCrv: 'P-256',
    halfOrder: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n >> 1n,
  },
  [SECP256K1_JWT_ALG]: {
    name: 'secp256k1',
    jwkCrv: 'secp256k1',
    halfOrder: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n >> 1n,
  },
}

interface PublicKey {
  curve: Curve
  key: KeyObject
  /** uncompressed SEC1 point (65 bytes): libsecp256k1 parses it without a square root */
  point: Uint8Array
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

function loadKey(didKey: string): PublicKey {
  const hit = keyCache.get(didKey)
  if (hit) return hit
  let parsed
  try {
    parsed = parseDidKey(didKey)
  } catch (err) {
    throw new UnsupportedKeyError(`not a usable did:key: ${(err as Error).message}`, { cause: err })
  }
  const curve = CURVES[parsed.jwtAlg]
  if (!curve) throw new UnsupportedKeyError(`unsupported key algorithm ${parsed.jwtAlg}`)
  const point = ECDH.convertKey(parsed.keyBytes, curve.name, undefined, undefined, 'uncompressed') as Buffer
  const key = createPublicKey({
    key: {
      kty: 'EC',
      crv: curve.jwkCrv,
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  })
  const entry = { curve, key, point }
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
  keyCache.set(didKey, entry)
  return entry
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
  const { curve, key, point } = loadKey(didKey)
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
  return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
}
