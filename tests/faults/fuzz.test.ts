// Hostile bytes, the full run: 100 000 mutated real frames — bit flips, truncations, wrong types,
// huge CBOR lengths, deep nesting, CAR headers and sections that lie, oversized blocks and frames —
// through the decoder and the verifier as functions (tests/helpers/fuzz.ts). No crash, no hang, no
// heap growth; every frame decoded or refused with a code from a closed list; a mutant accepted only
// when it proves exactly what an honest frame proves; honest frames still verify between mutants.
// Set FUZZ_RUNS / FUZZ_SEED to change the run (the seed of a failure is printed by fast-check).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDevnet, type Devnet } from '../helpers/devnet.ts'
import { buildFuzzCorpus, runFuzz } from '../helpers/fuzz.ts'
import type { Corpus } from '../helpers/mutate.ts'

const RUNS = Number(process.env.FUZZ_RUNS ?? 100_000)
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

let net: Devnet
let corpus: Corpus
let keyOf: (did: string) => string

beforeAll(async () => {
  net = await startDevnet()
  const built = await buildFuzzCorpus(net)
  corpus = built.corpus
  keyOf = built.keyOf
})

afterAll(async () => {
  await net?.close()
})

describe('fuzz: decoder and verifier as functions', () => {
  it(`${RUNS} mutated frames: no crash, no hang, bounded memory, every one decoded or refused with a code`, async () => {
    const t0 = Date.now()
    const report = await runFuzz(corpus, keyOf, RUNS, { seed: SEED })
    console.log(`fuzz: ${RUNS} frames in ${((Date.now() - t0) / 1000).toFixed(0)} s; slowest ${report.maxMs.toFixed(0)} ms; heap growth ${(report.heapGrowth / 1e6).toFixed(1)} MB`)
    console.log(`fuzz outcomes: ${JSON.stringify(report.outcomes)}`)
    expect(Object.values(report.outcomes).reduce((a, b) => a + b, 0)).toBe(RUNS)
    // every layer is reached
    for (const k of ['undecodable:bad-cbor', 'undecodable:bad-body', 'undecodable:bad-header', 'undecodable:frame-too-big', 'rejected:cid-mismatch', 'rejected:car-invalid', 'rejected:too-big', 'rejected:mst-proof', 'rejected:commit-mismatch', 'accepted']) {
      expect(report.outcomes[k] ?? 0, k).toBeGreaterThan(0)
    }
    // no hang: a generous bound (a frame nested 600 000 deep takes about a second on a loaded machine)
    expect(report.maxMs).toBeLessThan(20_000)
    // bounded memory: after a collection the heap is where it started, give or take
    expect(report.heapGrowth).toBeLessThan(64 * 1024 * 1024)
    expect(report.honestRechecks).toBe(Math.floor(RUNS / 97))
  })
})
