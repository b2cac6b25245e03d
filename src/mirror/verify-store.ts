/**
 * Offline re-verification of the whole mirror: every stored block against its CID, every commit
 * against its block and stored signing key, every version re-proven from its proof blocks, every
 * current record re-proven from its repo's head (and its JSON against its block), every repo head
 * against its commit. Each failure names the row. Nothing is fetched: only what the database holds.
 *
 * Wiring only: rows from `store/history.ts`, checks from `verify/`.
 */
import { checkBlock } from '../verify/car.ts'
import { parseCommitBlock, verifyCommitSignature } from '../verify/commit.ts'
import { PROOF_FAILURES, type ProofFailureCode, type SignatureCache } from '../verify/proof.ts'
import { VerificationError } from '../verify/reasons.ts'
import type { Db } from '../store/db.ts'
import { blocksPage, getBlock, type BlocksCursor } from '../store/blocks.ts'
import {
  commitsPage,
  countProvenance,
  getCommitByCid,
  listPurges,
  recordsPage,
  versionsPage,
  type PurgeRow,
} from '../store/history.ts'
import { listRepos } from '../store/repos.ts'
import { reverifyCurrent, reverifyVersion, type ProofStatus } from './provenance.ts'

export type StoreTable = 'blocks' | 'commits' | 'record_versions' | 'records' | 'repos'

export interface StoreFailure {
  table: StoreTable
  /** the row's key, e.g. `{ uri }`, `{ id, uri, rev }`, `{ did, cid }` */
  key: Record<string, string | number | null>
  /** `records uri=at://…` — the row, as a person would look it up */
  row: string
  code: ProofFailureCode | 'unavailable'
  message: string
}

export interface StoreVerifyReport {
  ok: boolean
  checked: Record<StoreTable, number>
  /** rows that cannot be re-proven by design: versions and commits whose blocks an account deletion purged, purge tombstones */
  skipped: { purgedVersions: number; tombstones: number; purgedCommits: number }
  failures: StoreFailure[]
  ms: number
}

export interface StoreProgress {
  phase: StoreTable
  done: number
  total: number
  failures: number
}

const PAGE = 500

const rowName = (table: StoreTable, key: StoreFailure['key']): string =>
  `${table} ${Object.entries(key).map(([k, v]) => `${k}=${v}`).join(' ')}`

const codeOf = (err: unknown): ProofFailureCode => {
  if (err instanceof VerificationError && (PROOF_FAILURES as readonly string[]).includes(err.reason)) return err.reason as ProofFailureCode
  if (err instanceof VerificationError && err.reason === 'identity-unresolved') return 'bad-signature'
  throw err
}

/**
 * Re-verifies everything the database holds. Never throws for bad data: every failure is a row in
 * the report. `onProgress` is called every few hundred rows and at the end of each phase.
 */
export async function verifyStore(db: Db, opts: { onProgress?: (p: StoreProgress) => void } = {}): Promise<StoreVerifyReport> {
  const t0 = performance.now()
  const totals = countProvenance(db)
  const failures: StoreFailure[] = []
  const checked: Record<StoreTable, number> = { blocks: 0, commits: 0, record_versions: 0, records: 0, repos: 0 }
  const skipped = { purgedVersions: 0, tombstones: 0, purgedCommits: 0 }
  const purges = new Map<string, PurgeRow[]>()
  for (const p of listPurges(db)) purges.set(p.did, [...(purges.get(p.did) ?? []), p])
  const purged = (did: string) => purges.has(did)
  const signatures: SignatureCache = new Set()

  const fail = (table: StoreTable, key: StoreFailure['key'], code: StoreFailure['code'], message: string) =>
    failures.push({ table, key, row: rowName(table, key), code, message })
  const fromStatus = (table: StoreTable, key: StoreFailure['key'], s: ProofStatus) => {
    if (s.status === 'failed') fail(table, key, s.code, s.message)
  }
  const progress = (phase: StoreTable, done: number, force = false) => {
    const total = phase === 'record_versions' ? totals.versions : totals[phase]
    if (force || done % PAGE === 0) opts.onProgress?.({ phase, done, total, failures: failures.length })
  }

  // 1. every block hashes to its CID
  for (let after: BlocksCursor | null = null; ; ) {
    const page = blocksPage(db, after, PAGE)
    if (!page.length) break
    for (const b of page) {
      try {
        checkBlock(b.cid, b.bytes)
      } catch (err) {
        fail('blocks', { did: b.did, cid: b.cid }, codeOf(err), (err as Error).message)
      }
      progress('blocks', ++checked.blocks)
    }
    after = page.at(-1)!.next
  }
  progress('blocks', checked.blocks, true)

  // 2. every commit row agrees with its block, and the block's signature with the stored key
  for (let after = { did: '', rev: '' }; ; ) {
    const page = commitsPage(db, after, PAGE)
    if (!page.length) break
    for (const c of page) {
      const key = { did: c.did, rev: c.rev, cid: c.cid }
      const bytes = getBlock(db, c.did, c.cid)
      if (!bytes) {
        if (purged(c.did)) skipped.purgedCommits++
        else fail('commits', key, 'block-missing', `commit block ${c.cid} is not stored`)
      } else {
        try {
          checkBlock(c.cid, bytes)
          const commit = parseCommitBlock(bytes)
          const diff = [
            commit.did !== c.did && `did ${commit.did}`,
            commit.rev !== c.rev && `rev ${commit.rev}`,
            commit.data !== c.dataCid && `data ${commit.data} (row: ${c.dataCid})`,
            !Buffer.from(commit.sig).equals(Buffer.from(c.sig)) && 'sig',
          ].filter(Boolean)
          if (diff.length) fail('commits', key, 'commit-mismatch', `the commit block differs from the row: ${diff.join(', ')}`)
          else {
            verifyCommitSignature(bytes, c.signingKey)
            signatures.add(`${c.cid} ${c.signingKey}`)
          }
        } catch (err) {
          fail('commits', key, codeOf(err), (err as Error).message)
        }
      }
      progress('commits', ++checked.commits)
    }
    after = page.at(-1)!
  }
  progress('commits', checked.commits, true)

  // 3. every version re-proven from its own proof blocks and signing key
  for (let after = 0; ; ) {
    const page = versionsPage(db, after, PAGE)
    if (!page.length) break
    for (const v of page) {
      const s = await reverifyVersion(db, v, purges.get(v.did) ?? [], signatures)
      if (s.status === 'none') skipped.tombstones++
      else if (s.status === 'purged') skipped.purgedVersions++
      else fromStatus('record_versions', { id: v.id, uri: v.uri, rev: v.rev }, s)
      progress('record_versions', ++checked.record_versions)
    }
    after = page.at(-1)!.id
  }
  progress('record_versions', checked.record_versions, true)

  // 4. every current record: JSON = its block decoded, block → CID, and proven from the repo's head
  for (let after = ''; ; ) {
    const page = recordsPage(db, after, PAGE)
    if (!page.length) break
    for (const r of page) {
      const { proof } = await reverifyCurrent(db, r, signatures)
      fromStatus('records', { uri: r.uri }, proof)
      progress('records', ++checked.records)
    }
    after = page.at(-1)!.uri
  }
  progress('records', checked.records, true)

  // 5. every repo head names a stored commit with the same rev and data root
  for (const r of listRepos(db)) {
    checked.repos++
    if (!r.headCid || purged(r.did)) continue
    const c = getCommitByCid(db, r.did, r.headCid)
    const key = { did: r.did }
    if (!c) fail('repos', key, 'block-missing', `head commit ${r.headCid} has no commits row`)
    else if (c.rev !== r.rev || c.dataCid !== r.dataCid) {
      fail('repos', key, 'commit-mismatch', `head is rev ${r.rev} data ${r.dataCid}, its commit says rev ${c.rev} data ${c.dataCid}`)
    }
  }
  progress('repos', checked.repos, true)

  return { ok: failures.length === 0, checked, skipped, failures, ms: Math.round(performance.now() - t0) }
}
