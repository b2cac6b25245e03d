// A fake relay serving real frames captured off a dev-env PDS, with one thing changed per scenario.
// Each change is refused with its own reason code, nothing forged is stored, and the mirror ends
// equal to what the PDS serves (a gap is healed by resync from the real PDS).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BytesWrapper, decode, encode } from '@atcute/cbor'
import type { CommitEvent } from '../src/firehose/events.ts'
import { runMirror } from '../src/mirror/run.ts'
import { openDb } from '../src/store/db.ts'
import { listRejections } from '../src/store/rejections.ts'
import { readStatus } from '../src/store/status.ts'
import { createAccounts, seedMalfestio, startDevnet, updateRecord, writeRecord, MALFESTIO_NSIDS, sampleMalfestio, type Devnet } from './helpers/devnet.ts'
import { captureFrames, editCommitBlock, eventOf, frameOf, readCarParts, startFakeRelay, writeCarParts } from './helpers/fake-relay.ts'
import { mirrorConfig, mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

let net: Devnet
let tmp: ReturnType<typeof tempDir>
let dids: string[]
/** frames up to the point the base mirror was built */
let baseFrames: Uint8Array[]
/** the honest frames written after that point */
let liveFrames: Uint8Array[]
let baseDb: Buffer
let deckUri: string

const isInScopeCommit = (f: Uint8Array) => {
  const e = eventOf(f)
  return e.type === 'commit' && e.ops.some((o) => o.path.startsWith('org.stormlightlabs.malfestio.'))
}

beforeAll(async () => {
  net = await startDevnet()
  tmp = tempDir()
  const accounts = await createAccounts(net, 2, 'tamper')
  dids = accounts.map((a) => a.did)
  await seedMalfestio(net, accounts)
  baseFrames = await captureFrames(net.subscribeUrl, 0)
  // the base mirror: synchronized with the PDS as of now
  const basePath = `${tmp.dir}/base.db`
  const relay = await startFakeRelay(baseFrames)
  await runMirror(mirrorConfig(net, basePath, { service: relay.url, cursor: 0, idleMs: 600 }))
  await relay.close()
  const db = openDb(basePath)
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  baseDb = (await import('node:fs')).readFileSync(basePath)
  // new honest writes after the base: these are the frames the scenarios alter
  const lastSeq = (eventOf(baseFrames.at(-1)!) as CommitEvent).seq
  const deck = await writeRecord(net, dids[0]!, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'tamper target' }))
  deckUri = deck.uri
  await writeRecord(net, dids[0]!, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: deck.uri, front: 'f', back: 'b' }))
  await updateRecord(net, dids[0]!, MALFESTIO_NSIDS.deck, deck.rkey, sampleMalfestio.deck({ title: 'tamper target v2' }))
  await writeRecord(net, dids[1]!, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'other account' }))
  liveFrames = await captureFrames(net.subscribeUrl, lastSeq)
  expect(liveFrames.filter(isInScopeCommit).length).toBe(4)
}, 120_000)

afterAll(async () => {
  await net?.close()
  tmp?.cleanup()
})

/** Runs the mirror from the base database over base + altered live frames. */
async function runScenario(name: string, live: Uint8Array[]) {
  const fs = await import('node:fs')
  const dbPath = `${tmp.dir}/${name}.db`
  fs.writeFileSync(dbPath, baseDb)
  const relay = await startFakeRelay([...baseFrames, ...live])
  try {
    const result = await runMirror(mirrorConfig(net, dbPath, { service: relay.url, idleMs: 600 }))
    const db = openDb(dbPath)
    const rejections = listRejections(db)
    const status = readStatus(db)
    const versions = db.prepare('SELECT uri, cid, rev FROM record_versions').all() as { uri: string; cid: string | null; rev: string }[]
    db.close()
    return { result, rejections, status, versions, mirror: mirrorSnapshot(dbPath) }
  } finally {
    await relay.close()
  }
}

/** Index in liveFrames of the n-th in-scope commit. */
const nth = (n: number) => liveFrames.findIndex((f) => f === liveFrames.filter(isInScopeCommit)[n])

describe('fake relay: one altered frame at a time', () => {
  it('control: the honest frames apply cleanly', async () => {
    const { rejections, mirror } = await runScenario('control', liveFrames)
    expect(rejections).toEqual([])
    expect(mirror).toEqual(await pdsSnapshot(net, dids))
  })

  it('a signature byte flipped → bad-signature', async () => {
    const i = nth(0)
    const evt = eventOf(liveFrames[i]!) as CommitEvent
    const forged = await editCommitBlock(evt, (c) => {
      const sig = new Uint8Array(c.sig.buf) // a copy: the decoded bytes alias the captured frame
      sig[10] ^= 0x01
      c.sig = new BytesWrapper(sig)
    })
    const live = liveFrames.slice()
    live[i] = frameOf(forged)
    const { rejections, mirror, versions } = await runScenario('bad-sig', live)
    expect(rejections.map((r) => [r.seq, r.reason])).toContainEqual([evt.seq, 'bad-signature'])
    expect(versions.some((v) => v.rev === evt.rev)).toBe(false) // nothing of the forged commit kept
    expect(mirror).toEqual(await pdsSnapshot(net, dids)) // the honest state arrived by resync
  })

  it('a record block swapped under its CID → cid-mismatch', async () => {
    const i = nth(0)
    const evt = eventOf(liveFrames[i]!) as CommitEvent
    const parts = readCarParts(evt.blocks)
    const recordCid = evt.ops[0]!.cid!
    const value = decode(parts.blocks.get(recordCid)!) as Record<string, unknown>
    parts.blocks.set(recordCid, encode({ ...value, title: 'FORGED' }))
    const live = liveFrames.slice()
    live[i] = frameOf({ ...evt, blocks: await writeCarParts(parts) })
    const { rejections, mirror } = await runScenario('swap', live)
    expect(rejections.map((r) => [r.seq, r.reason])).toContainEqual([evt.seq, 'cid-mismatch'])
    expect(JSON.stringify(mirror)).not.toContain('FORGED')
    expect(mirror).toEqual(await pdsSnapshot(net, dids))
  })

  it('an op pointing at a different record than the MST holds → mst-proof', async () => {
    const i = nth(0)
    const evt = eventOf(liveFrames[i]!) as CommitEvent
    const parts = readCarParts(evt.blocks)
    const forgedBytes = encode({ $type: MALFESTIO_NSIDS.deck, title: 'FORGED', createdAt: new Date().toISOString() })
    const { create, toString } = await import('@atcute/cid')
    const forgedCid = toString(await create(0x71, forgedBytes))
    parts.blocks.set(forgedCid, forgedBytes)
    const live = liveFrames.slice()
    live[i] = frameOf({ ...evt, blocks: await writeCarParts(parts), ops: [{ ...evt.ops[0]!, cid: forgedCid }] })
    const { rejections, mirror } = await runScenario('mst', live)
    expect(rejections.map((r) => [r.seq, r.reason])).toContainEqual([evt.seq, 'mst-proof'])
    expect(JSON.stringify(mirror)).not.toContain('FORGED')
    expect(mirror).toEqual(await pdsSnapshot(net, dids))
  })

  it('prevData wrong → inversion-mismatch', async () => {
    const i = nth(1)
    const evt = eventOf(liveFrames[i]!) as CommitEvent
    const other = eventOf(liveFrames[nth(0)]!) as CommitEvent
    const live = liveFrames.slice()
    live[i] = frameOf({ ...evt, prevData: other.prevData })
    const { rejections, mirror } = await runScenario('prevdata', live)
    expect(rejections.map((r) => [r.seq, r.reason])).toContainEqual([evt.seq, 'inversion-mismatch'])
    expect(mirror).toEqual(await pdsSnapshot(net, dids))
  })

  it('a frame skipped → chain-break, the repo is resynced and ends equal to the PDS', async () => {
    const i = nth(0)
    const skipped = eventOf(liveFrames[i]!) as CommitEvent
    const next = eventOf(liveFrames[nth(1)]!) as CommitEvent
    const live = liveFrames.filter((_, j) => j !== i)
    const { rejections, mirror, status } = await runScenario('skip', live)
    expect(rejections.map((r) => [r.seq, r.reason])).toEqual([[next.seq, 'chain-break']])
    expect(rejections[0]!.message).toContain(`since ${skipped.rev}`)
    expect(status.counters['resync.ok']).toBeGreaterThanOrEqual(1)
    expect(status.repos.byState).toEqual({ synchronized: 2 })
    expect(mirror).toEqual(await pdsSnapshot(net, dids))
  })

  it('an old frame re-sent with a new seq → a stale no-op; it cannot roll a record back', async () => {
    const first = eventOf(liveFrames[nth(0)]!) as CommitEvent // creates the deck (v1)
    const lastSeq = (eventOf(liveFrames.at(-1)!) as CommitEvent).seq
    const replayed = frameOf({ ...first, seq: lastSeq + 1 })
    const { rejections, mirror, status } = await runScenario('resend', [...liveFrames, replayed])
    expect(rejections).toEqual([])
    expect(status.counters['commits.stale']).toBeGreaterThanOrEqual(1)
    const pds = await pdsSnapshot(net, dids)
    expect(mirror[deckUri]).toEqual(pds[deckUri])
    expect((mirror[deckUri]!.value as { title: string }).title).toBe('tamper target v2')
    expect(mirror).toEqual(pds)
  })

  it('the same frame delivered twice (same seq) is dropped as a duplicate', async () => {
    const live = liveFrames.flatMap((f) => [f, f])
    const { rejections, mirror, result } = await runScenario('dup', live)
    expect(rejections).toEqual([])
    expect(result.stats.duplicates).toBe(liveFrames.length)
    expect(mirror).toEqual(await pdsSnapshot(net, dids))
  })
})
