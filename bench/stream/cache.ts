/**
 * The cached bench stream on disk (bench/.cache/stream-<id>/, git-ignored):
 *
 *   stream.capture   the #commit frames in seq order (capture format of src/firehose/capture.ts)
 *   repos-<n>.bin    repo CARs at stream start (what getRepo serves), ranges listed in accounts.json
 *   accounts.json    per account: did, handle, signing key, DID document, repo range
 *   meta.json        parameters, counts and timings; written last, so its presence means "complete"
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Operation } from '@did-plc/lib'
import type { KeyType, StreamParams } from './plan.ts'

export interface AccountInfo {
  did: string
  /** signed PLC genesis operation (the DID is its hash) */
  plcOp: Operation
  handle: string
  didKey: string
  keyType: KeyType
  isNew: boolean
  initialRecords: number
  commits: number
  doc: object
  repo: { file: string; offset: number; length: number } | null
}

export interface StreamMeta {
  id: string
  params: StreamParams
  frames: number
  firstSeq: number
  lastSeq: number
  bytes: number
  ops: { create: number; update: number; delete: number; malfestio: number }
  opsPerCommit: { one: number; few: number; batch: number }
  p256Commits: number
  genesisCommits: number
  repoRecordsAtStart: { min: number; median: number; max: number; total: number }
  generatedAt: string
  generationSec: number
}

export interface CachedStream {
  dir: string
  capturePath: string
  meta: StreamMeta
  accounts: AccountInfo[]
}

export const DEFAULT_CACHE_DIR = new URL('../.cache/', import.meta.url).pathname

export const streamDir = (cacheDir: string, id: string) => join(cacheDir, `stream-${id}`)

/** The cached stream with this id, or null when it is missing or incomplete. */
export function loadCachedStream(cacheDir: string, id: string): CachedStream | null {
  const dir = streamDir(cacheDir, id)
  if (!existsSync(join(dir, 'meta.json'))) return null
  return loadStreamDir(dir)
}

/** A complete stream directory. */
export function loadStreamDir(dir: string): CachedStream {
  const metaPath = join(dir, 'meta.json')
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as StreamMeta
  const accounts = JSON.parse(readFileSync(join(dir, 'accounts.json'), 'utf8')) as AccountInfo[]
  return { dir, capturePath: join(dir, 'stream.capture'), meta, accounts }
}
