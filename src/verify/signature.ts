/**
 * Signature verification for atproto keys (did:key, P-256 and secp256k1), through node:crypto with
 * cached KeyObjects. atproto signatures are 64-byte compact (r‖s) and must be low-S; node:crypto
 * accepts high-S, so the rule is checked here. `@atproto/crypto` stays the reference in tests.
 */
import { ECDH, createPublicKey, verify, type KeyObject } from 'node:crypto'
import { parseDidKey, P256_JWT_ALG, SECP256K1_JWT_ALG } from '@atproto/crypto'

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
  const entry = { curve, key }
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
  const { curve, key } = loadKey(didKey)
  if (sig.byteLength !== 64) return false
  if (toBigInt(sig.subarray(32)) > curve.halfOrder) return false
  return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
}
