/**
 * Proof CARs from the stored blocks: the signed commit, the MST path to a record and the record —
 * the blocks `com.atproto.sync.getRecord` returns, chosen as `@atproto/repo`'s `getRecords` chooses
 * them (`MST.cidsForPath`) over the mirror's `blocks` table. Shared by `export-proof` and the read API.
 *
 * Nothing here checks the blocks: `verify/proof.ts` does, on the CAR this returns.
 */
import { BlockMap, blocksToCarFile, def, MST, ReadableBlockstore } from '@atproto/repo'
import { parseCid, type Cid } from '@atproto/lex-data'
import { getBlock } from './blocks.ts'
import type { Db } from './db.ts'
import { REPO_OF_DID } from './repo-ids.ts'

export type BlockCheck = (cid: string, bytes: Uint8Array) => void

/** Read-only blockstore over one repo's rows of `blocks` (blocks are keyed by DID and CID). */
export class SqliteBlockstore extends ReadableBlockstore {
  private readonly db: Db
  private readonly check?: BlockCheck
  /** what `check` threw last (so callers can tell it from @atproto/repo's own errors) */
  checkError: unknown
  readonly did: string
  /** `check` sees every block read (e.g. a hash check) and may throw to stop the read. */
  constructor(db: Db, did: string, check?: BlockCheck) {
    super()
    this.did = did
    this.check = check
    this.db = db
  }
  /** Synchronous lookup by CID string. */
  get(cid: string): Uint8Array | undefined {
    // prepare() hands out the connection's cached statement (result modes reset): pluck on every use
    const bytes = getBlock(this.db, this.did, cid)
    if (!bytes) return undefined
    try {
      this.check?.(cid, bytes)
    } catch (err) {
      this.checkError = err
      throw err
    }
    return bytes
  }
  async getBytes(cid: Cid): Promise<Uint8Array | null> {
    return this.get(cid.toString()) ?? null
  }
  async has(cid: Cid): Promise<boolean> {
    return this.get(cid.toString()) !== undefined
  }
  async getBlocks(cids: Cid[]): Promise<{ blocks: BlockMap; missing: Cid[] }> {
    const blocks = new BlockMap()
    const missing: Cid[] = []
    for (const cid of cids) {
      const bytes = this.get(cid.toString())
      if (bytes) blocks.set(cid, bytes)
      else missing.push(cid)
    }
    return { blocks, missing }
  }
}

/** Why no proof can be built for a URI (the reason code is for callers mapping it to a status). */
export class ProofUnavailableError extends Error {
  readonly code: 'not-found' | 'no-such-version' | 'blocks-missing' | 'blocks-corrupt' | 'purged'
  constructor(code: ProofUnavailableError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProofUnavailableError'
    this.code = code
  }
}

/** A built proof CAR and what it claims (to be checked with `verify/proof.ts`'s `verifyProofCar`). */
export interface RecordProofCar {
  car: Uint8Array
  did: string
  collection: string
  rkey: string
  commitCid: string
  rev: string
  /** the record CID the proof shows, or null: the proof shows the record absent at that commit */
  cid: string | null
  /** the key the commit was accepted with */
  signingKey: string
  /** 'head': the repo's current head; 'version': the commit of a stored version */
  at: 'head' | 'version'
}

const splitUri = (uri: string): { did: string; collection: string; rkey: string } => {
  const m = /^at:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri)
  if (!m) throw new ProofUnavailableError('not-found', `${uri} is not an at://did/collection/rkey URI`)
  return { did: m[1]!, collection: m[2]!, rkey: m[3]! }
}

/**
 * Builds the proof CAR of a record: by default at the repo's current head (the record's current CID,
 * or its absence if deleted), or with `rev` at the commit of that stored version.
 * The CAR's root is the signed commit; its blocks are the commit, the MST nodes on the record's path
 * and the record — what `com.atproto.sync.getRecord` returns.
 * `checkBlock` (e.g. verify/car.ts's hash check) sees every block read; what it throws propagates.
 * @throws {ProofUnavailableError} unknown repo or version, purged account, blocks not stored or not decodable
 */
export async function buildRecordProofCar(
  db: Db,
  uri: string,
  opts: { rev?: string; checkBlock?: BlockCheck } = {},
): Promise<RecordProofCar> {
  const { did, collection, rkey } = splitUri(uri)
  let commitCid: string
  let rev: string
  let at: RecordProofCar['at']
  if (opts.rev === undefined) {
    const repo = db.prepare('SELECT head_cid AS headCid, rev FROM repos WHERE did = ?').get(did) as
      | { headCid: string | null; rev: string | null }
      | undefined
    if (!repo?.headCid || !repo.rev) throw new ProofUnavailableError('not-found', `the mirror holds no head for the repo ${did}`)
    commitCid = repo.headCid
    rev = repo.rev
    at = 'head'
  } else {
    const v = db.prepare('SELECT commit_cid AS commitCid, rev FROM record_versions WHERE uri = ? AND rev = ?').get(uri, opts.rev) as
      | { commitCid: string; rev: string }
      | undefined
    if (!v) throw new ProofUnavailableError('no-such-version', `the mirror holds no version of ${uri} at rev ${opts.rev}`)
    commitCid = v.commitCid
    rev = v.rev
    at = 'version'
  }
  const commit = db.prepare(`SELECT signing_key AS signingKey FROM commits WHERE repo = ${REPO_OF_DID} AND cid = ?`).get(did, commitCid) as
    | { signingKey: string }
    | undefined
  if (!commit) throw new ProofUnavailableError('blocks-missing', `commit ${commitCid} of ${did} is not stored`)
  const purged = db.prepare('SELECT 1 AS one FROM repo_purges WHERE did = ?').get(did)
  const store = new SqliteBlockstore(db, did, opts.checkBlock)
  let car: Uint8Array
  let found: Cid | null
  try {
    const root = parseCid(commitCid)
    const head = await store.readObjAndBytes(root, def.commit)
    const mst = MST.load(store, head.obj.data)
    const key = `${collection}/${rkey}`
    // the nodes on the key's path (and the record when present), as getRecords picks them
    const path = await mst.cidsForPath(key)
    found = await mst.get(key) // same tree object: its nodes are already loaded
    const { blocks, missing } = await store.getBlocks(path)
    if (missing.length) {
      if (purged) throw new ProofUnavailableError('purged', `the account ${did} was deleted: its blocks were purged`)
      throw new ProofUnavailableError('blocks-missing', `proof of ${uri} at ${commitCid}: blocks ${missing.join(', ')} are not stored`)
    }
    const all = new BlockMap()
    all.set(root, head.bytes)
    all.addMap(blocks)
    car = await blocksToCarFile(root, all)
  } catch (err) {
    if (err instanceof ProofUnavailableError) throw err
    const name = (err as Error)?.constructor?.name
    if (name === 'MissingBlockError' || name === 'MissingBlocksError') {
      if (purged) throw new ProofUnavailableError('purged', `the account ${did} was deleted: its blocks were purged`, { cause: err })
      throw new ProofUnavailableError('blocks-missing', `proof of ${uri} at ${commitCid}: ${(err as Error).message}`, { cause: err })
    }
    if (err === store.checkError) throw err
    throw new ProofUnavailableError('blocks-corrupt', `proof of ${uri} at ${commitCid}: a stored block does not decode: ${(err as Error).message}`, { cause: err })
  }
  return { car, did, collection, rkey, commitCid, rev, cid: found ? found.toString() : null, signingKey: commit.signingKey, at }
}
