/**
 * The proof blocks: commits, MST nodes and records, keyed by (repo, CID). The repo is a small integer
 * from `dids` (`repo-ids.ts`) and the CID is stored as its 36 binary bytes, not a 59-character string: that index
 * takes a page write for nearly every block a batch adds (CIDs are random within a repo), and keys
 * a third the size make it a third as many pages (bench: see README, "Where the time goes").
 * Callers speak CID strings; the binary form stays in here.
 */
import { decode as decodeCid, fromString as cidFromString, toString as cidToString } from '@atcute/cid'
import type { Db } from './db.ts'
import { knownRepoId, repoId } from './repo-ids.ts'

/** The binary form of a CID string (a string that does not parse keeps its UTF-8 bytes: it then matches nothing, and `verify` reports it). */
export function cidBinary(cid: string): Uint8Array {
  try {
    return cidFromString(cid).bytes
  } catch {
    return new TextEncoder().encode(cid)
  }
}

/** The string form of stored CID bytes (bytes that do not decode come back as `invalid-cid:<hex>`, which no block hashes to). */
export function cidText(bytes: Uint8Array): string {
  try {
    return cidToString(decodeCid(bytes))
  } catch {
    return `invalid-cid:${Buffer.from(bytes).toString('hex')}`
  }
}

/**
 * Stores blocks of one repo (present ones are left alone). `binary` gives a CID's bytes when the
 * caller already has them (the CAR holds them next to each block); others are parsed from the string.
 */
export function putBlocks(db: Db, did: string, blocks: Iterable<[string, Uint8Array]>, binary?: ReadonlyMap<string, Uint8Array>): void {
  const repo = repoId(db, did)
  const stmt = db.prepare('INSERT OR IGNORE INTO blocks (repo, cid, bytes) VALUES (?, ?, ?)')
  for (const [cid, bytes] of blocks) stmt.run(repo, binary?.get(cid) ?? cidBinary(cid), bytes)
}

/** Drops every block of a repo (account deletion); other repos' blocks are untouched. */
export function deleteBlocks(db: Db, did: string): void {
  const repo = knownRepoId(db, did)
  if (repo !== undefined) db.prepare('DELETE FROM blocks WHERE repo = ?').run(repo)
}

const asBytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** One stored block of a repo. */
export function getBlock(db: Db, did: string, cid: string): Uint8Array | undefined {
  const repo = knownRepoId(db, did)
  if (repo === undefined) return undefined
  const b = db.prepare('SELECT bytes FROM blocks WHERE repo = ? AND cid = ?').pluck().get(repo, cidBinary(cid)) as Buffer | undefined
  return b && asBytes(b)
}

/** The stored blocks among `cids` (missing ones are simply absent from the map). */
export function getBlocks(db: Db, did: string, cids: Iterable<string>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>()
  const repo = knownRepoId(db, did)
  if (repo === undefined) return out
  const stmt = db.prepare('SELECT bytes FROM blocks WHERE repo = ? AND cid = ?').pluck()
  for (const cid of cids) {
    const b = stmt.get(repo, cidBinary(cid)) as Buffer | undefined
    if (b) out.set(cid, asBytes(b))
  }
  return out
}

/** Where a page of `blocksPage` ended (opaque: pass it back for the next page). */
export interface BlocksCursor {
  readonly repo: number
  readonly cid: Uint8Array
}

export interface BlockRow {
  did: string
  cid: string
  bytes: Uint8Array
  /** the cursor after this row */
  next: BlocksCursor
}

/** A page of blocks in storage order (repo, then CID bytes), after `after` (null: from the start). */
export function blocksPage(db: Db, after: BlocksCursor | null, limit: number): BlockRow[] {
  const rows = db
    .prepare(
      `SELECT b.repo, d.did, b.cid, b.bytes FROM blocks b JOIN dids d ON d.id = b.repo
       WHERE (b.repo, b.cid) > (?, ?) ORDER BY b.repo, b.cid LIMIT ?`,
    )
    .all(after?.repo ?? -1, after?.cid ?? Buffer.alloc(0), limit) as { repo: number; did: string; cid: Buffer; bytes: Buffer }[]
  return rows.map((r) => ({ did: r.did, cid: cidText(r.cid), bytes: asBytes(r.bytes), next: { repo: r.repo, cid: r.cid } }))
}

export const countBlocks = (db: Db): number => db.prepare('SELECT COUNT(*) FROM blocks').pluck().get() as number
