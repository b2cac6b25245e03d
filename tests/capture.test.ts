// Capture files: the format (round trip, every kind of damage gives a CaptureFormatError and never
// anything else), then the real thing: `capture` of a dev-env PDS while a live mirror follows it,
// `replay --file` into an empty database gives the same mirror, and a damaged capture fails cleanly.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { CAPTURE_MAGIC, CaptureFormatError, createCaptureWriter, openCapture } from '../src/firehose/capture.ts'
import { playCaptureFile } from '../src/firehose/capture-run.ts'
import { decodeFrame } from '../src/firehose/frames.ts'
import { encodeEventFrame } from '../src/firehose/wire.ts'
import { openDb } from '../src/store/db.ts'
import { readStatus } from '../src/store/status.ts'
import {
  createAccounts, currentSeq, deactivate, deleteRecord, seedMalfestio, startDevnet, updateRecord, writeRecord, MALFESTIO_NSIDS,
  sampleMalfestio, type Devnet, type TestAccount,
} from './helpers/devnet.ts'
import { runCli, startCli, waitFor } from './helpers/cli-process.ts'
import { mirrorContent } from './helpers/db-compare.ts'
import { mirrorSnapshot, pdsSnapshot, tempDir } from './helpers/mirror.ts'

const tmp = tempDir('mm-capture-')
afterAll(() => tmp.cleanup())

/** Reads every frame it can; a defect ends the read and is returned instead of thrown. */
async function readAll(path: string): Promise<{ frames: Uint8Array[]; error?: unknown }> {
  const frames: Uint8Array[] = []
  try {
    const r = await openCapture(path)
    try {
      for await (const f of r.frames()) frames.push(f.bytes)
    } finally {
      await r.close()
    }
    return { frames }
  } catch (error) {
    return { frames, error }
  }
}

const sampleFrames = (n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) =>
    encodeEventFrame({ type: 'identity', seq: i + 1, did: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', handle: `h${i}.example.com`, time: '2026-01-01T00:00:00.000Z' }),
  )

describe('capture file format', () => {
  const dir = `${tmp.dir}/format`
  mkdirSync(dir, { recursive: true })

  it('round-trips frames and the header naming the source', async () => {
    const frames = sampleFrames(5)
    const w = await createCaptureWriter(`${dir}/ok.cap`, { source: 'wss://relay.example', cursor: 41, meta: { to: 99 } })
    for (const f of frames) await w.write(f)
    await w.close()
    expect(w.frames).toBe(5)
    const r = await openCapture(`${dir}/ok.cap`)
    expect(r.header).toMatchObject({ format: 'malfestio-mirror-capture', version: 1, source: 'wss://relay.example', cursor: 41, to: 99 })
    const back: Uint8Array[] = []
    for await (const f of r.frames()) back.push(f.bytes)
    await r.close()
    expect(back).toEqual(frames)
    expect(readFileSync(`${dir}/ok.cap`).byteLength).toBe(w.bytes)
  })

  it('refuses to overwrite an existing file unless asked', async () => {
    const err = await createCaptureWriter(`${dir}/ok.cap`, { source: 'wss://x' }).catch((e) => e)
    expect(err).toBeInstanceOf(CaptureFormatError)
    expect(err.code).toBe('exists')
  })

  it('names what is wrong with files that are not captures', async () => {
    writeFileSync(`${dir}/text.cap`, 'hello, this is not a capture file at all')
    writeFileSync(`${dir}/badheader.cap`, Buffer.concat([Buffer.from(CAPTURE_MAGIC), Buffer.from([0, 0, 0, 5]), Buffer.from('nope!')]))
    const codes: Record<string, string> = {}
    for (const [name, path] of [['text', `${dir}/text.cap`], ['badheader', `${dir}/badheader.cap`], ['missing', `${dir}/missing.cap`], ['directory', dir]]) {
      const err = await openCapture(path!).catch((e) => e)
      expect(err, name).toBeInstanceOf(CaptureFormatError)
      expect(err.message).toContain(path === dir ? 'directory' : path)
      codes[name!] = err.code
    }
    expect(codes).toEqual({ text: 'not-a-capture', badheader: 'bad-header', missing: 'unreadable', directory: 'not-a-capture' })
  })

  it('any truncation gives the frames before it and then a truncation error, never another error', async () => {
    const frames = sampleFrames(4)
    const w = await createCaptureWriter(`${dir}/four.cap`, { source: 'wss://relay.example' })
    for (const f of frames) await w.write(f)
    await w.close()
    const bytes = readFileSync(`${dir}/four.cap`)
    // frame boundaries: a cut exactly there is a shorter, valid file
    const r = await openCapture(`${dir}/four.cap`)
    const ends: number[] = []
    for await (const f of r.frames()) ends.push(f.offset + 4 + f.bytes.byteLength)
    await r.close()
    expect(ends).toHaveLength(4)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: bytes.byteLength - 1 }), async (cut) => {
        const path = `${dir}/cut-${cut}.cap`
        writeFileSync(path, bytes.subarray(0, cut))
        const got = await readAll(path)
        const whole = ends.filter((e) => e <= cut).length
        expect(got.frames).toEqual(frames.slice(0, got.frames.length))
        if (cut < r.dataOffset) {
          expect(got.error).toBeInstanceOf(CaptureFormatError)
          expect(['not-a-capture', 'truncated', 'bad-header']).toContain((got.error as CaptureFormatError).code)
        } else if (ends.includes(cut) || cut === r.dataOffset) {
          expect(got.error).toBeUndefined()
          expect(got.frames.length).toBe(whole)
        } else {
          expect(got.frames.length).toBe(whole)
          expect(got.error).toBeInstanceOf(CaptureFormatError)
          expect((got.error as CaptureFormatError).code).toBe('truncated')
          expect((got.error as CaptureFormatError).message).toMatch(/truncated at byte \d+: frame #\d+/)
        }
      }),
      { numRuns: 150 },
    )
  })

  it('a flipped byte anywhere gives frames or a CaptureFormatError, and replay names a frame that does not decode', async () => {
    const bytes = readFileSync(`${dir}/four.cap`)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: bytes.byteLength - 1 }), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const damaged = Buffer.from(bytes)
        damaged[at] = damaged[at]! ^ x
        const path = `${dir}/flip-${at}-${x}.cap`
        writeFileSync(path, damaged)
        const got = await readAll(path)
        if (got.error !== undefined) expect(got.error).toBeInstanceOf(CaptureFormatError)
        // through the replay source, a frame that does not decode is a bad-frame error, not a crash
        const played = await playCaptureFile({ path, onFrame: () => undefined }).catch((e) => e)
        if (played instanceof Error) expect(played).toBeInstanceOf(CaptureFormatError)
      }),
      { numRuns: 150 },
    )
    // a length prefix that stays valid around a body that does not decode
    const bad = Buffer.from(bytes)
    const r = await openCapture(`${dir}/four.cap`)
    bad[r.dataOffset + 4] = 0xff // first byte of frame #0's CBOR header
    await r.close()
    writeFileSync(`${dir}/badframe.cap`, bad)
    const err = await playCaptureFile({ path: `${dir}/badframe.cap`, onFrame: () => undefined }).catch((e) => e)
    expect(err).toBeInstanceOf(CaptureFormatError)
    expect(err.code).toBe('bad-frame')
    expect(err.message).toContain('frame #0 at byte')
  })
})

describe('capture of a dev-env run, replayed into an empty database', () => {
  let net: Devnet
  let accounts: TestAccount[]

  beforeAll(async () => {
    net = await startDevnet()
    accounts = await createAccounts(net, 3, 'cap')
    await seedMalfestio(net, accounts.slice(0, 2))
  }, 120_000)

  afterAll(async () => {
    await net?.close()
  })

  const cursorOf = (dbPath: string): number | undefined => {
    if (!existsSync(dbPath)) return undefined
    try {
      const db = openDb(dbPath, { readonly: true })
      try {
        return readStatus(db).cursors[0]?.seq
      } finally {
        db.close()
      }
    } catch {
      return undefined // created but not yet migrated by the other process
    }
  }

  const lastSeqIn = async (path: string) => (await readAll(path)).frames.map(seqOfFrame).filter((s): s is number => s !== undefined).at(-1)

  it('`sync --capture` replays to the same mirror; `capture` records the same frames; damage fails cleanly', async () => {
    const syncCap = `${tmp.dir}/sync.cap`
    const rawCap = `${tmp.dir}/raw.cap`
    const livePath = `${tmp.dir}/live.db`
    const net0 = ['--plc', net.plcUrl, '--handle-resolver', net.pdsUrl]
    // the live run: a mirroring process that also captures, and a bare capture next to it
    const live = startCli(['sync', '--relay', net.firehoseUrl, '--db', livePath, '--cursor', '0', '--capture', syncCap, '--json', ...net0])
    const cap = startCli(['capture', '--out', rawCap, '--relay', net.firehoseUrl, '--from', '0', '--json'])
    let target: number
    try {
      // the live mirror first catches up with the seeded backlog (the repos it meets are resynced now)
      const seeded = await currentSeq(net)
      await waitFor('the live mirror to read the backlog', () => ((cursorOf(livePath) ?? -1) >= seeded ? true : undefined), 60_000)
      // the run goes on while both listen: new writes, an update, a delete, a deactivation
      const [a, b, c] = accounts as [TestAccount, TestAccount, TestAccount]
      const deck = await writeRecord(net, c.did, MALFESTIO_NSIDS.deck, sampleMalfestio.deck({ title: 'written during the capture' }))
      const card = await writeRecord(net, c.did, MALFESTIO_NSIDS.card, sampleMalfestio.card({ deckRef: deck.uri }))
      await updateRecord(net, c.did, MALFESTIO_NSIDS.deck, deck.rkey, sampleMalfestio.deck({ title: 'edited', cardRefs: [card.uri] }))
      await writeRecord(net, a.did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'late note' }))
      const scratch = await writeRecord(net, b.did, MALFESTIO_NSIDS.note, sampleMalfestio.note({ title: 'to delete' }))
      await deleteRecord(net, b.did, MALFESTIO_NSIDS.note, scratch.rkey)
      await deactivate(net, b.did)
      target = await currentSeq(net)
      // stop both (Ctrl-C) once they hold everything up to the PDS's current seq
      await waitFor('the live mirror to reach the head', () => (cursorOf(livePath) === target ? true : undefined), 60_000)
      await waitFor('the capture to reach the head', async () => ((await lastSeqIn(rawCap)) === target ? true : undefined))
      live.child.kill('SIGINT')
      cap.child.kill('SIGINT')
      const [l, r] = await Promise.all([live.done, cap.done])
      expect(l.code, l.stderr).toBe(0)
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(l.stdout)).toMatchObject({ stoppedBy: 'signal', rejected: 0, lastSeq: target })
      const summary = JSON.parse(r.stdout)
      expect(summary).toMatchObject({ out: rawCap, source: net.firehoseUrl, firstSeq: 1, lastSeq: target, stoppedBy: 'signal' })
      expect(summary.frames).toBeGreaterThanOrEqual(target)
    } finally {
      live.child.kill('SIGKILL')
      cap.child.kill('SIGKILL')
    }
    // the live mirror is right, so "the same as the live mirror" means something
    const dids = accounts.map((x) => x.did)
    expect(mirrorSnapshot(livePath)).toEqual(await pdsSnapshot(net, [dids[0]!, dids[2]!]))
    const want = mirrorContent(livePath)
    expect(want.records.length).toBeGreaterThan(20)
    expect(want.repos).toContainEqual(expect.objectContaining({ did: dids[1], active: 0, status: 'deactivated' }))

    // both files hold the same stream frames; the mirroring one also holds the getRepo answers it used
    const streamOf = async (p: string) => (await readAll(p)).frames.filter((f) => decodeFrame(f).kind !== 'unknown')
    expect(await streamOf(syncCap)).toEqual(await streamOf(rawCap))

    // `replay --file` of the mirroring capture into an empty database: the same mirror, history included
    const replayPath = `${tmp.dir}/replayed.db`
    const replay = await runCli(['replay', '--file', syncCap, '--db', replayPath, '--json', ...net0])
    expect(replay.code, replay.stderr).toBe(0)
    const out = JSON.parse(replay.stdout)
    expect(out).toMatchObject({ stoppedBy: 'end', rejected: 0, lastSeq: target, capture: { online: 0 } })
    expect(out.capture.served).toBe(out.capture.held)
    expect(out.capture.held).toBeGreaterThanOrEqual(3) // each repo met mid-stream was resynced once
    expect(mirrorContent(replayPath)).toEqual(want)
    // replaying the same file again resumes after the stored cursor: every frame is a duplicate
    const again = await runCli(['replay', '--file', syncCap, '--db', replayPath, '--json', ...net0])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ stoppedBy: 'end', processed: 0, duplicates: target })
    expect(mirrorContent(replayPath)).toEqual(want)

    // the bare capture has no recorded answers: its resyncs ask the PDS now, so the current records
    // agree with the live run, while the history starts at each repo's state of today
    const rawPath = `${tmp.dir}/raw.db`
    const raw = await runCli(['replay', '--file', rawCap, '--db', rawPath, '--json', ...net0])
    expect(raw.code, raw.stderr).toBe(0)
    expect(JSON.parse(raw.stdout)).toMatchObject({ stoppedBy: 'end', lastSeq: target, capture: { held: 0, served: 0 } })
    expect(mirrorSnapshot(rawPath)).toEqual(mirrorSnapshot(livePath))

    // a capture cut in the middle of a frame: the frames before it are replayed, then one clear line, exit 1
    const whole = readFileSync(syncCap)
    const cutPath = `${tmp.dir}/cut.cap`
    writeFileSync(cutPath, whole.subarray(0, whole.byteLength - 10))
    const cutDb = `${tmp.dir}/cut.db`
    const cut = await runCli(['replay', '--file', cutPath, '--db', cutDb, ...net0])
    expect(cut.code).toBe(1)
    expect(cut.stderr).toMatch(/malfestio-mirror replay: .*cut\.cap: truncated at byte \d+: frame #\d+ has \d+ of \d+ bytes/)
    expect(cut.stderr).not.toMatch(/\n\s+at /) // no stack trace
    expect(cursorOf(cutDb)).toBe(await lastSeqIn(cutPath))

    // not a capture at all
    writeFileSync(`${tmp.dir}/junk.cap`, 'junk')
    const junk = await runCli(['replay', '--file', `${tmp.dir}/junk.cap`, '--db', `${tmp.dir}/junk.db`])
    expect(junk.code).toBe(1)
    expect(junk.stderr.trim()).toBe(`malfestio-mirror replay: ${tmp.dir}/junk.cap is not a malfestio-mirror capture file (bad magic bytes)`)
  }, 240_000)
})

function seqOfFrame(bytes: Uint8Array): number | undefined {
  const f = decodeFrame(bytes)
  return f.kind === 'message' && 'seq' in f.event ? f.event.seq : undefined
}
