// Hostile bytes on the wire: a relay that splices garbage into a real dev-env stream (random bytes,
// truncated frames, text messages, frames over 5 MB, lying CBOR lengths, trailing bytes, fuzz
// mutants that do not decode) and replaces a few commits with forged ones that still decode.
// Each garbage frame drops the connection; the mirror resumes from its cursor and ends with the same
// database as a run over the same stream without the garbage: no gap, no duplicate effect, the forged
// commits refused with their reason, and the PDS's state after the resyncs they cause. The same
// cursor yielding garbage again and again stops the real CLI with an error naming the cursor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BytesWrapper, encode } from '@atcute/cbor'
import type { CommitEvent } from '../../src/firehose/events.ts'
import { decodeFrame } from '../../src/firehose/frames.ts'
import { runMirror } from '../../src/mirror/run.ts'
import { openDb } from '../../src/store/db.ts'
import { listRejections } from '../../src/store/rejections.ts'
import { readStatus } from '../../src/store/status.ts'
import { createAccounts, seedMalfestio, startDevnet, type Devnet } from '../helpers/devnet.ts'
import { runCli } from '../helpers/cli-process.ts'
import { captureFrames, editCommitBlock, eventOf, frameOf, readCarParts, writeCarParts } from '../helpers/fake-relay.ts'
import { startHostileRelay, type ScriptItem } from '../helpers/hostile-relay.ts'
import { applyMutations, mutatedFrame } from '../helpers/mutate.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from '../helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let dids: string[]
let honest: Uint8Array[]
/** the stream with three commits replaced by forged ones that decode */
let stream: Uint8Array[]
let forged: { seq: number; reason: string }[]

const inScope = (f: Uint8Array) => {
  const e = eventOf(f)
  return e.type === 'commit' && e.ops.some((o) => o.path.startsWith('org.stormlightlabs.malfestio.'))
}

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  const accounts = await createAccounts(net, 4, 'wire')
  dids = accounts.map((a) => a.did)
  await seedMalfestio(net, accounts)
  honest = await captureFrames(net.subscribeUrl, 0)
  // forge the 3rd in-scope commit of three accounts (each has later commits: the gap is healed)
  stream = honest.slice()
  forged = []
  const forge: ((e: CommitEvent) => Promise<{ evt: CommitEvent; reason: string }>)[] = [
    async (e) => {
      const parts = readCarParts(e.blocks)
      const cid = e.ops.find((o) => o.cid)!.cid!
      const bytes = parts.blocks.get(cid)!.slice()
      bytes[bytes.length - 2]! ^= 0x20
      parts.blocks.set(cid, bytes)
      return { evt: { ...e, blocks: await writeCarParts(parts) }, reason: 'cid-mismatch' }
    },
    async (e) => ({
      evt: await editCommitBlock(e, (c) => {
        const sig = new Uint8Array(c.sig.buf)
        sig[7]! ^= 0x01
        c.sig = new BytesWrapper(sig)
      }),
      reason: 'bad-signature',
    }),
    async (e) => {
      const other = readCarParts(e.blocks).root // a CID in the CAR that is not the record
      return { evt: { ...e, ops: e.ops.map((o, i) => (i === 0 ? { ...o, cid: other } : o)) }, reason: 'mst-proof' }
    },
  ]
  for (const [k, did] of dids.slice(0, 3).entries()) {
    const idx = stream.map((f, i) => [f, i] as const).filter(([f]) => inScope(f) && (eventOf(f) as CommitEvent).repo === did)[2]![1]
    const { evt, reason } = await forge[k]!(eventOf(stream[idx]!) as CommitEvent)
    stream[idx] = frameOf(evt)
    forged.push({ seq: evt.seq, reason })
  }
}, 180_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

/** Undecodable garbage of every kind, one item per kind and a few fuzz mutants. */
function garbageKinds(): { label: string; garbage: Uint8Array | string }[] {
  const sample = honest[honest.length >> 1]!
  const hugeLength = new Uint8Array([...encode({ op: 1, t: '#commit' }), 0xa1, 0x66, ...Buffer.from('blocks'), 0x5b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0])
  const kinds: { label: string; garbage: Uint8Array | string }[] = [
    { label: 'random bytes', garbage: new Uint8Array([0xff, 0x13, 0x37, 0x00, 0xfe]) },
    { label: 'truncated frame', garbage: sample.slice(0, sample.length >> 1) },
    { label: 'text message', garbage: 'this is not a frame' },
    { label: 'over 5 MB', garbage: new Uint8Array(5_000_001) },
    { label: 'huge CBOR length', garbage: hugeLength },
    { label: 'trailing bytes', garbage: new Uint8Array([...sample, 0x00]) },
    { label: 'header only', garbage: encode({ op: 1, t: '#commit' }) },
    { label: 'empty', garbage: new Uint8Array(0) },
  ]
  return kinds
}

async function fuzzMutants(n: number): Promise<{ label: string; garbage: Uint8Array }[]> {
  const out: { label: string; garbage: Uint8Array }[] = []
  const corpus = { frames: honest, cids: [(eventOf(honest.find(inScope)!) as CommitEvent).commit] }
  for (const m of fc.sample(mutatedFrame(honest.length), { numRuns: 400, seed: 42 })) {
    const bytes = await applyMutations(corpus, m.base, m.mutations)
    try {
      decodeFrame(bytes)
    } catch {
      out.push({ label: `fuzz mutant ${out.length}`, garbage: bytes })
      if (out.length === n) break
    }
  }
  return out
}

function dbContent(dbPath: string) {
  const db = openDb(dbPath)
  try {
    return {
      versions: db.prepare('SELECT uri, rev, action, cid, prev_cid, commit_cid, seq FROM record_versions ORDER BY uri, rev, action').all(),
      commits: db.prepare('SELECT did, rev, cid, seq, source FROM commits ORDER BY did, rev').all(),
      records: db.prepare('SELECT uri, cid, rev, valid FROM records ORDER BY uri').all(),
      rejections: listRejections(db).map((r) => [r.seq, r.did, r.reason]),
      status: readStatus(db),
    }
  } finally {
    db.close()
  }
}

describe('garbage on the wire', () => {
  it('each garbage frame drops the connection, the mirror resumes from its cursor: same database as without it', async () => {
    // the reference: the same stream (with the forged commits), no garbage
    const clean = await startHostileRelay(stream.map((frame) => ({ frame })))
    const cleanDb = `${tmp.dir}/clean.db`
    try {
      await runMirror(mirrorConfig(net, cleanDb, { service: clean.url, cursor: 0, idleMs: 2000 }))
    } finally {
      await clean.close()
    }

    const garbage = [...garbageKinds(), ...(await fuzzMutants(12))]
    const script: ScriptItem[] = []
    const every = Math.max(2, Math.floor(stream.length / (garbage.length + 1)))
    let g = 0
    stream.forEach((frame, i) => {
      script.push({ frame })
      if ((i + 1) % every === 0 && g < garbage.length) script.push({ ...garbage[g++]!, times: 1 })
    })
    expect(g).toBe(garbage.length)
    const relay = await startHostileRelay(script)
    const dbPath = `${tmp.dir}/hostile.db`
    let result
    try {
      result = await runMirror(mirrorConfig(net, dbPath, { service: relay.url, cursor: 0, idleMs: 2000 }))
    } finally {
      await relay.close()
    }
    console.log(`wire: ${stream.length} frames, ${relay.garbageSent.length} garbage frames (${[...new Set(relay.garbageSent.map((l) => l.replace(/ \d+$/, '')))].join(', ')}), ${relay.cursors.length} connections`)

    expect(relay.garbageSent).toEqual(garbage.map((x) => x.label)) // every kind was sent once
    expect(relay.cursors.length).toBe(garbage.length + 1) // each one dropped the connection
    expect(result.stats.badFrames).toBe(garbage.length)
    // every reconnect resumed at or before the spot where the garbage was: no gap
    relay.cursors.slice(1).forEach((c, i) => expect(c ?? -1).toBeLessThanOrEqual(relay.garbageAfter[i]!))

    const got = dbContent(dbPath)
    const want = dbContent(cleanDb)
    expect(got.versions).toEqual(want.versions)
    expect(got.commits).toEqual(want.commits)
    expect(got.records).toEqual(want.records)
    expect(got.rejections).toEqual(want.rejections)
    const undecodable = Object.entries(got.status.counters).filter(([k]) => k.startsWith('frames.undecodable.'))
    expect(undecodable.reduce((a, [, v]) => a + v, 0)).toBe(garbage.length)
    // each commit was verified once, however often it was re-sent
    expect(got.status.counters['commits.verified']).toBe(want.status.counters['commits.verified'])
    // the forged commits were refused with their reasons; resync brought the PDS's state
    for (const f of forged) expect(got.rejections).toContainEqual([f.seq, expect.any(String), f.reason])
    expect(mirrorSnapshot(dbPath)).toEqual(await pdsSnapshot(net, dids))
  })

  it('the same cursor yielding garbage five times in a row: the CLI stops with an error naming the cursor', async () => {
    const at = Math.floor(stream.length / 2)
    const script: ScriptItem[] = [...stream.slice(0, at).map((frame) => ({ frame })), { garbage: new Uint8Array([0xff, 0xff]), times: Infinity, label: 'stuck' }, ...stream.slice(at).map((frame) => ({ frame }))]
    const stuckAfter = (eventOf(stream[at - 1]!) as { seq: number }).seq
    const relay = await startHostileRelay(script)
    try {
      const { code, stderr } = await runCli(['replay', '--from', '0', '--relay', relay.url, '--plc', net.plcUrl, '--db', `${tmp.dir}/stuck.db`, '--handle-resolver', net.pdsUrl])
      expect(code).toBe(1)
      expect(stderr).toMatch(new RegExp(`undecodable frames in a row at cursor ${stuckAfter}\\b`))
      expect(stderr).toContain('not reconnecting')
    } finally {
      await relay.close()
    }
  })
})
