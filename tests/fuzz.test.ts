// Hostile bytes, a sample (the fault suite runs 100 000): mutated real frames — bit flips,
// truncations, wrong types, huge CBOR lengths, deep nesting, lying CAR headers and sections, oversized
// blocks and frames — through the decoder and the verifier as functions. Each is decoded or refused
// with a code from a closed list, never a crash; a mutant is accepted only when it proves exactly
// what an honest frame proves; honest frames still verify after the mutants.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CommitEvent } from '../src/firehose/events.ts'
import { startDevnet, type Devnet } from './helpers/devnet.ts'
import { buildFuzzCorpus, checkFrame, runFuzz } from './helpers/fuzz.ts'
import { applyMutations, type Corpus } from './helpers/mutate.ts'
import { eventOf } from './helpers/fake-relay.ts'

let net: Devnet
let corpus: Corpus
let keyOf: (did: string) => string

beforeAll(async () => {
  net = await startDevnet()
  const built = await buildFuzzCorpus(net)
  corpus = built.corpus
  keyOf = built.keyOf
}, 120_000)

afterAll(async () => {
  await net?.close()
})

describe('fuzz: decoder and verifier as functions', () => {
  it('1 000 mutated frames: each decoded or refused with a reason code, nothing forged accepted', async () => {
    const report = await runFuzz(corpus, keyOf, 1_000)
    console.log(JSON.stringify(report))
    expect(Object.values(report.outcomes).reduce((a, b) => a + b, 0)).toBe(1_000)
    // the mutations reach every layer: the frame decoder, the CAR reader, the proofs
    expect(report.outcomes['undecodable:bad-cbor']).toBeGreaterThan(0)
    expect(report.outcomes['undecodable:bad-body']).toBeGreaterThan(0)
    expect(report.outcomes['rejected:cid-mismatch'] ?? 0).toBeGreaterThan(0)
    expect(report.outcomes['rejected:car-invalid'] ?? 0).toBeGreaterThan(0)
    expect(report.honestRechecks).toBe(Math.floor(1_000 / 97))
  })
})

describe('fuzz: cases it found, kept as regressions', () => {
  const commitWith = (pred: (e: CommitEvent) => boolean) => corpus.frames.findIndex((f) => {
    const e = eventOf(f)
    return e.type === 'commit' && pred(e)
  })

  it('an op action nested 20 000 arrays deep is a bad-body frame (its error message once overflowed the stack)', async () => {
    const base = commitWith((e) => e.ops.length > 0)
    const bytes = await applyMutations(corpus, base, [{ kind: 'nest', path: { in: 'op', i: 0, key: 'action' }, depth: 20_000, map: false }])
    expect(await checkFrame(bytes, keyOf)).toEqual({ kind: 'undecodable', code: 'bad-body' })
  })

  it('a create op that claims a previous version is refused (nothing proves the claim)', async () => {
    const base = commitWith((e) => e.ops.some((o) => o.action === 'create'))
    const i = (eventOf(corpus.frames[base]!) as CommitEvent).ops.findIndex((o) => o.action === 'create')
    expect(await checkFrame(corpus.frames[base]!, keyOf)).toMatchObject({ kind: 'accepted' })
    const bytes = await applyMutations(corpus, base, [{ kind: 'field', path: { in: 'op', i, key: 'prev' }, value: { t: 'cid', seed: 0 } }])
    expect(await checkFrame(bytes, keyOf)).toEqual({ kind: 'rejected', reason: 'inversion-mismatch' })
  })
})
