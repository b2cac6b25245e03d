// The correctness guard of the fast path: on a generated stream (the bench's generator, ~2 000
// signed #commit frames from K-256 and P-256 accounts) and on the interop vectors, the fast path
// (src/verify/*) and the reference path (@atproto/repo + @atproto/crypto only) give the same verdict
// on every frame — honest ones and forged ones alike. The bench runs the same check on its whole stream.
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import * as atcrypto from '@atproto/crypto'
import { MST, MemoryBlockstore, BlockMap } from '@atproto/repo'
import { parseCid } from '@atproto/lex-data'
import { openCapture } from '../src/firehose/capture.ts'
import fc from 'fast-check'
import { decodeFrame, peekCommit } from '../src/firehose/frames.ts'
import type { CommitEvent } from '../src/firehose/events.ts'
import { secp256k1Engine, verifySignature, verifySignatureNodeCrypto } from '../src/verify/signature.ts'
import { invertOps, toBlockstore } from '../src/verify/mst.ts'
import { compareFrame, fastVerdict, inMalfestioScope, malfestioScope, newTally, tamperFor, type CompareTally } from '../bench/lib/verdicts.ts'
import { referenceVerdict } from '../bench/lib/reference-verify.ts'
import { parseCommitBlock, verifyCommit, type VerifiedCommit } from '../src/verify/commit.ts'
import { readVerifiedCar } from '../src/verify/car.ts'
import { CarReader, CarWriter } from '@ipld/car'
import { tamper, TAMPERS } from '../bench/lib/tamper.ts'
import { createCommitVerifier, packCommit } from '../src/mirror/verify-pool.ts'
import { MALFESTIO_COLLECTIONS } from '../src/mirror/config.ts'
import { VerificationError } from '../src/verify/reasons.ts'
import { ensureStream, parseStreamParams } from '../bench/stream/generate.ts'
import type { CachedStream } from '../bench/stream/cache.ts'

const fixture = (p: string) => JSON.parse(readFileSync(new URL(`./fixtures/atproto-interop/${p}`, import.meta.url), 'utf8'))

/** The bench's 2 000-frame stream (cached under bench/.cache after the first run: same parameters → same bytes), decoded. */
async function guardStream(): Promise<{ stream: CachedStream; events: CommitEvent[] }> {
  const stream = await ensureStream(parseStreamParams(['--commits', '2000']))
  const reader = await openCapture(stream.capturePath)
  const events: CommitEvent[] = []
  try {
    for await (const f of reader.frames()) {
      const frame = decodeFrame(f.bytes)
      if (frame.kind !== 'message' || frame.event.type !== 'commit') throw new Error(`frame ${f.index} is not a #commit`)
      events.push(frame.event)
    }
  } finally {
    await reader.close()
  }
  return { stream, events }
}

describe('fast path = reference path on a generated stream', () => {
  let stream: CachedStream
  let events: CommitEvent[] = []
  beforeAll(async () => {
    ;({ stream, events } = await guardStream())
  }, 600_000)

  it('the stream looks like the network: mostly K-256, some P-256, creates/updates/deletes, Malfestio and others', () => {
    expect(events).toHaveLength(2000)
    const meta = stream.meta
    expect(meta.p256Commits).toBeGreaterThan(0)
    expect(meta.p256Commits).toBeLessThan(events.length / 2)
    expect(meta.ops.update).toBeGreaterThan(0)
    expect(meta.ops.delete).toBeGreaterThan(0)
    expect(meta.ops.malfestio).toBeGreaterThan(0)
    expect(meta.ops.malfestio).toBeLessThan(meta.ops.create + meta.ops.update + meta.ops.delete)
    expect(meta.genesisCommits).toBeGreaterThan(0)
    expect(meta.repoRecordsAtStart.max).toBeGreaterThan(1000)
  })

  it('every frame, and a forged variant of every 8th, gets the same verdict from both paths', async () => {
    const keys = new Map(stream.accounts.map((a) => [a.did, a.didKey]))
    const tally: CompareTally = newTally()
    for (const [i, evt] of events.entries()) {
      const other = stream.accounts.find((a) => a.did !== evt.repo && a.keyType === stream.accounts[i % stream.accounts.length]!.keyType)!
      await compareFrame(tally, evt, keys.get(evt.repo)!, { did: other.did, key: other.didKey }, tamperFor(i, 8))
    }
    expect(tally.examples).toEqual([])
    expect(tally.disagree).toBe(0)
    expect(tally.unexpected).toBe(0)
    expect(tally.frames).toBe(2000)
    expect(tally.tampered).toBe(250)
    // the honest frames all pass; every kind of lie was tried and refused
    expect(tally.honestOk).toBe(2000)
    for (const reason of ['bad-signature', 'cid-mismatch', 'mst-proof', 'inversion-mismatch', 'missing-prev', 'car-invalid', 'commit-mismatch']) {
      expect(tally.byVerdict[reason], reason).toBeGreaterThan(0)
    }
    expect(TAMPERS.length * 20).toBeLessThanOrEqual(tally.tampered)
  }, 600_000)
})

describe('verification threads = the main thread', () => {
  let stream: CachedStream
  let events: CommitEvent[] = []
  beforeAll(async () => {
    ;({ stream, events } = await guardStream())
  }, 600_000)

  const verdictOf = (p: Promise<unknown>) =>
    p.then(
      (v) => v,
      (err) => (err instanceof VerificationError ? err.reason : Promise.reject(err)),
    )

  it('every frame, and a forged variant of every 4th, gets the same result from the threads (same VerifiedCommit, same refusal)', async () => {
    const keys = new Map(stream.accounts.map((a) => [a.did, a.didKey]))
    const pool = createCommitVerifier({ threads: 2, collections: MALFESTIO_COLLECTIONS })
    const cases: { evt: CommitEvent; key: string }[] = []
    for (const [i, evt] of events.entries()) {
      const key = keys.get(evt.repo)!
      cases.push({ evt, key })
      const kind = tamperFor(i, 4)
      if (!kind) continue
      const other = stream.accounts.find((a) => a.did !== evt.repo && a.keyType === stream.accounts[i % stream.accounts.length]!.keyType)!
      const forged = await tamper(kind, evt, key, { did: other.did, key: other.didKey })
      cases.push({ evt: forged.evt, key: forged.key ?? key })
    }
    try {
      // all at once, as the mirror's per-repo queues send them: replies come back out of order
      const threaded = await Promise.all(cases.map((c) => verdictOf(pool.verify(c.evt, c.key))))
      const refusals: Record<string, number> = {}
      let packed = 0
      for (const [i, c] of cases.entries()) {
        const here = await verdictOf(verifyCommit(c.evt, c.key, malfestioScope))
        expect(threaded[i], `case ${i} (seq ${c.evt.seq})`).toEqual(here)
        if (typeof here === 'string') refusals[here] = (refusals[here] ?? 0) + 1
        // a verified commit crosses as one buffer and offsets, and comes back whole
        else packed += packCommit(here as VerifiedCommit) ? 1 : 0
      }
      expect(Object.keys(refusals).length).toBeGreaterThanOrEqual(5)
      expect(packed).toBe(threaded.filter((v) => typeof v !== 'string').length)
      const stats = pool.stats()
      // both threads did work, nothing fell back to this thread
      expect(stats.byThread.every((n) => n > 0)).toBe(true)
      expect(stats.byThread.reduce((a, b) => a + b)).toBe(cases.length)
      expect([stats.local, stats.threadFailures]).toEqual([0, 0])
    } finally {
      await pool.close()
    }
  }, 600_000)

  it('a DID always goes to the same thread; jobs still running at close() finish here, none lost', async () => {
    const keys = new Map(stream.accounts.map((a) => [a.did, a.didKey]))
    const pool = createCommitVerifier({ threads: 3, collections: MALFESTIO_COLLECTIONS })
    const one = events.filter((e) => e.repo === events[0]!.repo).slice(0, 20)
    await Promise.all(one.map((e) => pool.verify(e, keys.get(e.repo)!)))
    expect(pool.stats().byThread.filter((n) => n > 0)).toEqual([one.length])
    const batch = events.slice(0, 400)
    const running = batch.map((e) => pool.verify(e, keys.get(e.repo)!))
    await pool.close()
    const results = await Promise.all(running)
    expect(results.map((r) => r.cid)).toEqual(batch.map((e) => e.commit))
    const stats = pool.stats()
    expect(stats.local).toBeGreaterThan(0)
    expect(stats.threadFailures).toBe(0)
    // after close() everything runs here
    await pool.verify(events[0]!, keys.get(events[0]!.repo)!)
    expect(pool.stats().local).toBe(stats.local + 1)
  }, 600_000)

  it('threads that cannot start: every commit is verified here, none lost, and threads are given up after 3 deaths', async () => {
    const keys = new Map(stream.accounts.map((a) => [a.did, a.didKey]))
    const deaths: unknown[] = []
    const pool = createCommitVerifier({
      threads: 2,
      collections: MALFESTIO_COLLECTIONS,
      workerUrl: new URL('./helpers/broken-verify-worker.ts', import.meta.url),
      onThreadFailure: (err) => deaths.push(err),
    })
    try {
      const batch = events.slice(0, 200)
      const first = await Promise.all(batch.slice(0, 100).map((e) => pool.verify(e, keys.get(e.repo)!)))
      // one at a time from here: each new thread would die before taking the job
      for (const e of batch.slice(100)) await pool.verify(e, keys.get(e.repo)!)
      expect(first.map((r) => r.cid)).toEqual(batch.slice(0, 100).map((e) => e.commit))
      const stats = pool.stats()
      expect(stats.byThread).toEqual([0, 0])
      expect(stats.local).toBe(200)
      expect(stats.threadFailures).toBe(3)
      expect(deaths).toHaveLength(3)
      expect(String((deaths[0] as Error).message)).toContain('this verification thread cannot start')
    } finally {
      await pool.close()
    }
  }, 600_000)
})

describe('pass-through peek = full decode', () => {
  let frames: Uint8Array[] = []
  beforeAll(async () => {
    const stream = await ensureStream(parseStreamParams(['--commits', '2000']))
    const reader = await openCapture(stream.capturePath)
    for await (const f of reader.frames()) if (f.index % 4 === 0) frames.push(f.bytes)
    await reader.close()
  }, 600_000)

  const agree = (bytes: Uint8Array): 'peeked' | 'declined' => {
    const peek = peekCommit(bytes)
    let full: ReturnType<typeof decodeFrame> | Error
    try {
      full = decodeFrame(bytes)
    } catch (err) {
      full = err as Error
    }
    if (peek === null) return 'declined'
    // whatever the peek accepts, the full decoder accepts, with the same seq, repo, time and op paths
    expect(full).not.toBeInstanceOf(Error)
    const evt = (full as Extract<ReturnType<typeof decodeFrame>, { kind: 'message' }>).event
    expect(evt.type).toBe('commit')
    if (evt.type !== 'commit') throw new Error('unreachable')
    expect(peek).toEqual({ seq: evt.seq, repo: evt.repo, time: evt.time, paths: evt.ops.map((op) => op.path) })
    return 'peeked'
  }

  it('reads the same seq, repo, time and paths as decodeFrame from every honest #commit', () => {
    expect(frames.length).toBe(500)
    for (const f of frames) expect(agree(f)).toBe('peeked')
  })

  it('never accepts a frame decodeFrame refuses: byte flips, truncations, other frame types', () => {
    let declined = 0
    fc.assert(
      fc.property(fc.nat(frames.length - 1), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (i, at, byte, cut) => {
        const f = new Uint8Array(frames[i]!)
        const pos = at % f.byteLength
        const mutated = cut ? f.subarray(0, pos) : (f.set([byte], pos), f)
        if (agree(mutated) === 'declined') declined++
      }),
      { numRuns: 2000, seed: 5 },
    )
    // the mutations do hit the checks (otherwise the property says little)
    expect(declined).toBeGreaterThan(100)
  })
})

describe('fast path = reference path on the interop vectors', () => {
  it('signature-fixtures.json: both engines (low-S enforced) and @atproto/crypto agree on every vector', async () => {
    const vectors: { messageBase64: string; publicKeyDid: string; signatureBase64: string; validSignature: boolean }[] = fixture('crypto/signature-fixtures.json')
    expect(vectors.length).toBeGreaterThanOrEqual(6)
    for (const v of vectors) {
      const msg = Buffer.from(v.messageBase64, 'base64')
      const sig = Buffer.from(v.signatureBase64, 'base64')
      const reference = await atcrypto.verifySignature(v.publicKeyDid, msg, sig).catch(() => false)
      expect(verifySignature(v.publicKeyDid, msg, sig)).toBe(reference)
      expect(verifySignatureNodeCrypto(v.publicKeyDid, msg, sig)).toBe(reference)
      expect(reference).toBe(v.validSignature)
    }
  })

  // libsecp256k1 ships a prebuild for these; elsewhere node:crypto verifies K-256 and this guard
  // compares node:crypto with itself, so say which engine ran
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('secp256k1 goes through libsecp256k1 here (the prebuild loads)', () => {
    expect(secp256k1Engine).toBe('libsecp256k1')
  })

  it('libsecp256k1, node:crypto and @atproto/crypto agree on honest, high-S, out-of-range and mutated K-256 signatures', async () => {
    const keys = await Promise.all(Array.from({ length: 4 }, () => atcrypto.Secp256k1Keypair.create()))
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
    const be32 = (x: bigint) => Buffer.from(x.toString(16).padStart(64, '0'), 'hex')
    const seen = { valid: 0, invalid: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.nat(keys.length - 1),
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.constantFrom('honest', 'high-s', 's-plus-n', 'r-zero', 'flip', 'other-key', 'truncate'),
        fc.nat(),
        async (k, msg, how, at) => {
          const key = keys[k]!
          let sig = Buffer.from(await key.sign(msg))
          const s = BigInt('0x' + sig.subarray(32).toString('hex'))
          let did = key.did()
          if (how === 'high-s') sig = Buffer.concat([sig.subarray(0, 32), be32(n - s)])
          if (how === 's-plus-n' && s + n < 2n ** 256n) sig = Buffer.concat([sig.subarray(0, 32), be32(s + n)])
          if (how === 'r-zero') sig = Buffer.concat([Buffer.alloc(32), sig.subarray(32)])
          if (how === 'flip') sig[at % 64] ^= 1 << at % 8
          if (how === 'other-key') did = keys[(k + 1) % keys.length]!.did()
          if (how === 'truncate') sig = sig.subarray(0, at % 64)
          const reference = await atcrypto.verifySignature(did, msg, sig).catch(() => false)
          expect(verifySignature(did, msg, sig)).toBe(reference)
          expect(verifySignatureNodeCrypto(did, msg, sig)).toBe(reference)
          seen[reference ? 'valid' : 'invalid']++
        },
      ),
      { numRuns: 700, seed: 11 },
    )
    // both verdicts are exercised, so the agreement says something about each
    expect(seen.valid).toBeGreaterThan(50)
    expect(seen.invalid).toBeGreaterThan(300)
  })

  it('commit-proof-fixtures.json: the fast inversion and @atproto/repo’s MST agree on the old root', async () => {
    const vectors: { leafValue: string; keys: string[]; adds: string[]; dels: string[]; rootBeforeCommit: string; rootAfterCommit: string; blocksInProof: string[] }[] =
      fixture('firehose/commit-proof-fixtures.json')
    for (const v of vectors) {
      const leaf = parseCid(v.leafValue)
      const store = new MemoryBlockstore()
      let tree = await MST.create(store)
      for (const k of v.keys) tree = await tree.add(k, leaf)
      for (const k of v.adds) tree = await tree.add(k, leaf)
      for (const k of v.dels) tree = await tree.delete(k)
      const all = new Map<string, Uint8Array>()
      for (const [cid, bytes] of (await tree.getUnstoredBlocks()).blocks) all.set(cid.toString(), bytes)
      for (const [cid, bytes] of store.blocks) all.set(cid.toString(), bytes)
      const proof = new Map(v.blocksInProof.map((c) => [c, all.get(c)!]))
      const ops = [
        ...v.adds.map((path) => ({ action: 'create' as const, path })),
        ...v.dels.map((path) => ({ action: 'delete' as const, path, prev: v.leafValue })),
      ].sort((a, b) => (a.path < b.path ? -1 : 1))

      // reference: @atproto/repo's MST over the proof blocks alone
      const map = new BlockMap()
      for (const [cid, bytes] of proof) map.set(parseCid(cid), bytes)
      let ref = MST.load(new MemoryBlockstore(map), parseCid(v.rootAfterCommit))
      for (const op of [...ops].reverse()) ref = op.action === 'create' ? await ref.delete(op.path) : await ref.add(op.path, leaf)
      const reference = (await ref.getPointer()).toString()

      expect(await invertOps(toBlockstore(proof), v.rootAfterCommit, ops)).toBe(reference)
      expect(reference).toBe(v.rootBeforeCommit)
    }
  })
})

describe('fast path = reference path where @atcute/mst reads more than @atproto/repo', () => {
  // found by the bench's check over its 50 000-frame stream: 1 forged frame in 5 000 disagreed
  const f = JSON.parse(readFileSync(new URL('./fixtures/squash-top-frame.json', import.meta.url), 'utf8')) as {
    signingKey: string
    droppedNode: string
    frameBase64: string
  }
  const frame = decodeFrame(Buffer.from(f.frameBase64, 'base64'))
  if (frame.kind !== 'message' || frame.event.type !== 'commit') throw new Error('the fixture is not a #commit')
  const evt = frame.event
  const without = async (drop: (cid: string) => boolean): Promise<CommitEvent> => {
    const reader = await CarReader.fromBytes(evt.blocks)
    const { writer, out } = CarWriter.create(await reader.getRoots())
    const chunks: Uint8Array[] = []
    const collected = (async () => {
      for await (const c of out) chunks.push(c)
    })()
    for await (const b of reader.blocks()) if (!drop(b.cid.toString())) await writer.put(b)
    await writer.close()
    await collected
    return { ...evt, blocks: Buffer.concat(chunks) }
  }

  it('a create whose inversion squashes the tree top verifies without the node under the new top, as @atproto/repo says', async () => {
    const tally = newTally()
    await compareFrame(tally, evt, f.signingKey, { did: evt.repo, key: f.signingKey }, null)
    const dropped = await without((c) => c === f.droppedNode)
    expect(dropped.blocks.byteLength).toBeLessThan(evt.blocks.byteLength) // the node was there, and is gone
    await compareFrame(tally, dropped, f.signingKey, { did: evt.repo, key: f.signingKey }, null)
    expect(tally.examples).toEqual([])
    expect(tally.honestOk).toBe(2)
  })

  it('without a node both need (the root of the new tree), both refuse it as mst-proof', async () => {
    const dataRoot = parseCommitBlock(readVerifiedCar(evt.blocks).blocks.get(evt.commit)!).data
    const dropped = await without((c) => c === dataRoot)
    expect(await fastVerdict(dropped, f.signingKey)).toBe('mst-proof')
    expect(await referenceVerdict(dropped, f.signingKey, inMalfestioScope)).toBe('mst-proof')
  })
})
