/**
 * Captures that replay to the same mirror. The stream alone is not enough: a repo met mid-stream
 * (on a PDS, every repo: its genesis commit touches no Malfestio collection) is resynced with
 * getRepo, and the upstream answers that with the repo as it is *now*. So `sync --capture` writes
 * the frames as received and, next to them, every getRepo / getRepoStatus answer the mirror used;
 * `replay --file` serves those answers to its resyncs in the same order, and asks the network only
 * for what the file does not hold.
 */
import { createCaptureWriter, MAX_ENTRY_BYTES, type CaptureWriter } from '../firehose/capture.ts'
import { encodeRecordedAnswer, indexRecordedAnswers, type RecordedMethod } from '../firehose/capture-run.ts'
import { fetchRepoCar, fetchRepoStatus, RepoFetchError, type UpstreamRepoStatus } from './fetch-repo.ts'
import type { MirrorDeps } from './mirror.ts'

type Upstream = Required<MirrorDeps>

export interface Recorder extends Upstream {
  readonly writer: CaptureWriter
  /** appends a frame exactly as received */
  frame(bytes: Uint8Array): Promise<void>
  close(): Promise<void>
}

const GET_REPO: RecordedMethod = 'com.atproto.sync.getRepo'
const GET_REPO_STATUS: RecordedMethod = 'com.atproto.sync.getRepoStatus'

/** Opens a capture file for a mirroring run. */
export async function startRecording(path: string, opts: { source: string; cursor: number | null; overwrite?: boolean }): Promise<Recorder> {
  const writer = await createCaptureWriter(path, {
    source: opts.source,
    cursor: opts.cursor,
    overwrite: opts.overwrite,
    maxFrameBytes: MAX_ENTRY_BYTES,
    meta: { recordsAnswers: [GET_REPO, GET_REPO_STATUS] },
  })
  /** asks the upstream and records what it answered (the body, or the error) */
  async function recorded<T>(method: RecordedMethod, did: string, ask: () => Promise<T>, body: (t: T) => Uint8Array): Promise<T> {
    const at = new Date().toISOString()
    try {
      const answer = await ask()
      await writer.write(encodeRecordedAnswer({ method, did, at, result: body(answer) }))
      return answer
    } catch (err) {
      if (err instanceof RepoFetchError) {
        await writer.write(encodeRecordedAnswer({ method, did, at, error: { message: err.message, upstreamErrors: err.upstreamErrors } }))
      }
      throw err
    }
  }
  return {
    writer,
    frame: (bytes) => writer.write(bytes),
    fetchRepo: (did, bases) => recorded(GET_REPO, did, () => fetchRepoCar(did, bases), (car) => car),
    fetchRepoStatus: (did, bases) =>
      recorded(GET_REPO_STATUS, did, () => fetchRepoStatus(did, bases), (s) => new TextEncoder().encode(JSON.stringify(s))),
    close: () => writer.close(),
  }
}

export interface RecordedUpstream extends Upstream {
  /** answers the file holds, answers served from it, and queries that had to go to the network */
  stats(): { held: number; served: number; online: number }
  close(): Promise<void>
}

/** The upstream for a replay: the recorded answers first (in order, per query and DID), then the network. */
export async function recordedUpstream(path: string): Promise<RecordedUpstream> {
  const answers = await indexRecordedAnswers(path)
  let served = 0
  let online = 0
  async function replayed<T>(method: RecordedMethod, did: string, ask: () => Promise<T>, parse: (b: Uint8Array) => T): Promise<T> {
    const r = await answers.take(method, did)
    if (!r) {
      online++
      return ask()
    }
    served++
    if (r.error) throw new RepoFetchError(`${r.error.message} (recorded ${r.at})`, r.error.upstreamErrors)
    return parse(r.result!)
  }
  return {
    fetchRepo: (did, bases) => replayed(GET_REPO, did, () => fetchRepoCar(did, bases), (b) => b),
    fetchRepoStatus: (did, bases) =>
      replayed(GET_REPO_STATUS, did, () => fetchRepoStatus(did, bases), (b) => JSON.parse(new TextDecoder().decode(b)) as UpstreamRepoStatus),
    stats: () => ({ held: answers.size, served, online }),
    close: () => answers.close(),
  }
}
