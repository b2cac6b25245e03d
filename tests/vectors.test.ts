// Every interop vector we use, against the project's own verify functions, with the reference
// libraries (@atproto/crypto, @atproto/repo) as the oracle where they apply.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as atcrypto from '@atproto/crypto'
import { MST, MemoryBlockstore } from '@atproto/repo'
import { parseCid } from '@atproto/lex-data'
import { UnsupportedKeyError, verifySignature } from '../src/verify/signature.ts'
import { base58btc } from 'multiformats/bases/base58'
import { invertOps, mstView, toBlockstore } from '../src/verify/mst.ts'
import { tidTimestampMs, isTid } from '../src/verify/tid.ts'

const fixture = (p: string) => JSON.parse(readFileSync(new URL(`./fixtures/atproto-interop/${p}`, import.meta.url), 'utf8'))

interface SigVector {
  comment: string
  messageBase64: string
  algorithm: string
  publicKeyDid: string
  signatureBase64: string
  validSignature: boolean
  tags: string[]
}

describe('signature-fixtures.json', () => {
  const vectors: SigVector[] = fixture('crypto/signature-fixtures.json')
  it('has vectors', () => expect(vectors.length).toBeGreaterThanOrEqual(6))
  for (const v of vectors) {
    it(`${v.comment} → ${v.validSignature ? 'valid' : 'invalid'}`, async () => {
      const msg = Buffer.from(v.messageBase64, 'base64')
      const sig = Buffer.from(v.signatureBase64, 'base64')
      expect(verifySignature(v.publicKeyDid, msg, sig)).toBe(v.validSignature)
      // the reference path must agree with the fast path
      const reference = await atcrypto.verifySignature(v.publicKeyDid, msg, sig).catch(() => false)
      expect(reference).toBe(v.validSignature)
    })
  }
})

describe('w3c did:key vectors', () => {
  for (const file of ['crypto/w3c_didkey_K256.json', 'crypto/w3c_didkey_P256.json']) {
    const vectors: { privateKeyBytesHex?: string; privateKeyBytesBase58?: string; publicDidKey: string }[] = fixture(file)
    for (const v of vectors) {
      it(`${file}: ${v.publicDidKey.slice(0, 30)}… signs and verifies through the fast path`, async () => {
        const priv = v.privateKeyBytesHex
          ? Buffer.from(v.privateKeyBytesHex, 'hex')
          : Buffer.from(atcrypto.multibaseToBytes('z' + v.privateKeyBytesBase58!))
        const keypair = file.includes('K256')
          ? await atcrypto.Secp256k1Keypair.import(priv)
          : await atcrypto.P256Keypair.import(priv)
        expect(keypair.did()).toBe(v.publicDidKey)
        const msg = new TextEncoder().encode('malfestio')
        const sig = await keypair.sign(msg)
        expect(verifySignature(v.publicDidKey, msg, sig)).toBe(true)
        sig[5] ^= 1
        expect(verifySignature(v.publicDidKey, msg, sig)).toBe(false)
      })

      it(`${file}: ${v.publicDidKey.slice(0, 30)}… in its uncompressed form is refused, as @atproto/crypto refuses it`, async () => {
        const { keyBytes } = atcrypto.parseDidKey(v.publicDidKey) // the uncompressed point
        const prefix = file.includes('K256') ? atcrypto.SECP256K1_DID_PREFIX : atcrypto.P256_DID_PREFIX
        const uncompressed = `did:key:${base58btc.encode(Buffer.concat([prefix, keyBytes]))}`
        expect(() => atcrypto.parseDidKey(uncompressed)).toThrow()
        expect(() => verifySignature(uncompressed, new Uint8Array(1), new Uint8Array(64))).toThrow(UnsupportedKeyError)
      })
    }
  }
})

describe('did:key parsing', () => {
  const k256 = fixture('crypto/w3c_didkey_K256.json')[0].publicDidKey as string
  const bytes = () => Buffer.from(base58btc.decode(k256.slice('did:key:'.length)))

  it('a compressed key whose x is not on the curve is unusable, as @atproto/crypto says', () => {
    const b = bytes()
    let off = ''
    // flip bits of x until the point leaves the curve (about half of all x are not on it)
    for (let i = 0; i < 64 && !off; i++) {
      const c = Buffer.from(b)
      c[10 + (i % 20)] ^= 1 << i % 8
      const k = `did:key:${base58btc.encode(c)}`
      try {
        atcrypto.parseDidKey(k)
      } catch {
        off = k
      }
    }
    expect(off).not.toBe('')
    expect(() => verifySignature(off, new Uint8Array(1), new Uint8Array(64))).toThrow(UnsupportedKeyError)
  })

  it('an unknown multicodec, a wrong prefix or a non-base58 key is unusable', () => {
    const ed25519 = `did:key:${base58btc.encode(Buffer.concat([Buffer.from([0xed, 0x01]), Buffer.alloc(32, 7)]))}`
    for (const k of [ed25519, 'did:web:example.com', 'did:key:zNotBase58!!', 'did:key:' + k256.slice(9)]) {
      expect(() => verifySignature(k, new Uint8Array(1), new Uint8Array(64))).toThrow(UnsupportedKeyError)
    }
  })
})

interface ProofVector {
  comment: string
  leafValue: string
  keys: string[]
  adds: string[]
  dels: string[]
  rootBeforeCommit: string
  rootAfterCommit: string
  blocksInProof: string[]
}

async function buildTree(keys: string[], leaf: string) {
  const store = new MemoryBlockstore()
  let mst = await MST.create(store)
  for (const k of keys) mst = await mst.add(k, parseCid(leaf))
  return { store, mst }
}

describe('commit-proof-fixtures.json (sync 1.1 inversion)', () => {
  const vectors: ProofVector[] = fixture('firehose/commit-proof-fixtures.json')
  for (const v of vectors) {
    it(v.comment, async () => {
      const { store, mst: before } = await buildTree(v.keys, v.leafValue)
      expect((await before.getPointer()).toString()).toBe(v.rootBeforeCommit)
      let after = before
      for (const k of v.adds) after = await after.add(k, parseCid(v.leafValue))
      for (const k of v.dels) after = await after.delete(k)
      expect((await after.getPointer()).toString()).toBe(v.rootAfterCommit)
      // persist every node so we can pick the proof blocks out of the full set
      const { blocks } = await after.getUnstoredBlocks()
      const all = new Map<string, Uint8Array>()
      for (const [cid, bytes] of blocks) all.set(cid.toString(), bytes)
      for (const [cid, bytes] of (store as MemoryBlockstore).blocks) all.set(cid.toString(), bytes)
      // only the blocks the vector says a proof carries: our inversion must work from those alone
      const proof = new Map(v.blocksInProof.map((c) => [c, all.get(c)!]))
      expect([...proof.values()].every(Boolean)).toBe(true)
      const ops = [
        ...v.adds.map((path) => ({ action: 'create' as const, path })),
        ...v.dels.map((path) => ({ action: 'delete' as const, path, prev: v.leafValue })),
      ].sort((a, b) => (a.path < b.path ? -1 : 1))
      const proofStore = toBlockstore(proof)
      expect(await invertOps(proofStore, v.rootAfterCommit, ops)).toBe(v.rootBeforeCommit)
      const view = mstView(proofStore, v.rootAfterCommit)
      for (const k of v.adds) expect(await view.get(k)).toBe(v.leafValue)
      for (const k of v.dels) expect(await view.get(k)).toBeNull()
      // a lying op list (one add dropped) must not invert to the old root
      if (ops.length > 1) {
        const wrong = await invertOps(proofStore, v.rootAfterCommit, ops.slice(1)).catch(() => 'refused')
        expect(wrong).not.toBe(v.rootBeforeCommit)
      }
    })
  }
})

describe('TIDs', () => {
  it('decodes the timestamp of a fresh TID', async () => {
    const { TID } = await import('@atproto/common-web')
    const now = Date.now()
    const tid = TID.nextStr()
    expect(isTid(tid)).toBe(true)
    expect(Math.abs(tidTimestampMs(tid)! - now)).toBeLessThan(2000)
    expect(tidTimestampMs('not-a-tid')).toBeNull()
  })
})
