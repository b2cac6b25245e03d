/** Provenance commands over the mirror database, offline: audit, export-proof, verify. */
import { writeFileSync } from 'node:fs'
import { openDb } from '../../src/store/db.ts'
import { auditRecord, exportRecordProof, type AuditReport, type RecordAudit, type VersionAudit } from '../../src/mirror/provenance.ts'
import { verifyStore, type StoreProgress, type StoreVerifyReport } from '../../src/mirror/verify-store.ts'
import { COMMON, parse, pick, UsageError } from '../args.ts'
import { progressWriter } from '../progress.ts'

const out = (s: string) => process.stdout.write(s + '\n')
const dbPath = (flag: unknown) => pick(flag, 'MALFESTIO_DB', './malfestio-mirror.db')

function oneUri(positionals: string[], command: string): string {
  const uri = positionals[0]
  if (!uri) throw new UsageError(`${command} needs an at:// URI`)
  return uri
}

export const AUDIT_FLAGS = COMMON
export const EXPORT_PROOF_FLAGS = { ...COMMON, out: { type: 'string', short: 'o' }, rev: { type: 'string' } } as const
export const VERIFY_FLAGS = COMMON

export async function auditCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, AUDIT_FLAGS, 1)
  const uri = oneUri(positionals, 'audit')
  const db = openDb(dbPath(values.db), { mustExist: true })
  try {
    const report = await auditRecord(db, uri)
    out(values.json ? JSON.stringify(report) : formatAudit(report))
  } finally {
    db.close()
  }
  return 0
}

export async function exportProofCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, EXPORT_PROOF_FLAGS, 1)
  const uri = oneUri(positionals, 'export-proof')
  const file = values.out as string | undefined
  if (!file && process.stdout.isTTY) throw new UsageError('export-proof writes a binary CAR: give --out FILE or redirect stdout')
  const db = openDb(dbPath(values.db), { mustExist: true })
  try {
    const p = await exportRecordProof(db, uri, { rev: values.rev as string | undefined })
    const summary = {
      uri: `at://${p.did}/${p.collection}/${p.rkey}`,
      at: p.at,
      commit: p.commitCid,
      rev: p.rev,
      cid: p.cid,
      signingKey: p.signingKey,
      bytes: p.car.byteLength,
      out: file ?? null,
    }
    if (file) {
      writeFileSync(file, p.car)
      out(values.json ? JSON.stringify(summary) : `wrote ${file}: ${p.car.byteLength} bytes`)
    } else {
      process.stdout.write(p.car)
    }
    const what = p.cid ? `record ${p.cid}` : 'the ABSENCE of the record (deleted)'
    process.stderr.write(`proof of ${what} at commit ${p.commitCid} (rev ${p.rev}, ${p.at}), signed by ${p.signingKey}\n`)
  } finally {
    db.close()
  }
  return 0
}

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, VERIFY_FLAGS)
  const db = openDb(dbPath(values.db), { mustExist: true })
  let report: StoreVerifyReport
  try {
    const write = progressWriter({ json: values.json as boolean, everyMs: 2000, ttyEveryMs: 200 })
    report = await verifyStore(db, {
      onProgress: (p: StoreProgress) =>
        write(`verify: ${p.phase} ${p.done}/${p.total}, ${p.failures} failure${p.failures === 1 ? '' : 's'}`, { final: p.done === p.total }),
    })
  } finally {
    db.close()
  }
  out(values.json ? JSON.stringify(report) : formatVerify(report))
  return report.ok ? 0 : 1
}

// ───────────── human output ─────────────

const short = (s: string | null | undefined, n = 16) => (s ? (s.length > n + 4 ? `${s.slice(0, n)}…` : s) : '-')
const handle = (h: string | null, verified: boolean | null) => (h ? `@${h}${verified ? '' : ' (unverified)'}` : '(no handle)')

function proofWord(p: VersionAudit['proof']): string {
  switch (p.status) {
    case 'verified':
      return 'RE-VERIFIED'
    case 'failed':
      return `FAILS (${p.code}: ${p.message})`
    case 'purged':
      return 'blocks purged with the account'
    case 'none':
      return 'no commit (account deletion)'
  }
}

function versionLines(versions: VersionAudit[], indent: string): string[] {
  return versions.map((v, i) => {
    const parts = [
      `${indent}${String(i + 1).padStart(2)}. ${v.action.padEnd(6)}`,
      v.rev ? `rev ${v.rev}` : 'rev -',
      `seq ${v.seq ?? '-'}`,
      v.time ?? '',
      v.cid ? `cid ${short(v.cid, 20)}` : '',
      v.commitCid ? `commit ${short(v.commitCid, 20)}` : '',
    ].filter(Boolean)
    const lines: string[] = []
    if (!v.signingKey) lines.push(`${indent}      unsigned`)
    else {
      const r = v.keyRotatedOut
      const rotated = r ? ` — ROTATED OUT${r.fromSeq !== null ? ` at seq ${r.fromSeq}` : ''}${r.plcOp ? ` by PLC op ${short(r.plcOp.cid, 20)}` : ''}` : ''
      lines.push(`${indent}      key ${v.signingKey}${rotated}`)
      const o = v.keyOrigin
      if (o) lines.push(`${indent}      key valid from PLC op ${o.opCid} (${o.createdAt})${o.inLog === false ? ' — NO LONGER IN THE VERIFIED LOG' : ''}`)
    }
    const key = lines.join('\n')
    return `${parts.join('  ')}\n${key}\n${indent}      as ${handle(v.handle, v.handleVerified)}  proof: ${proofWord(v.proof)}`
  })
}

function recordLine(r: RecordAudit): string {
  const who = r.author.handleNow ? `@${r.author.handleNow}` : r.did
  const n = r.versions.length
  return `${r.status.toUpperCase().padEnd(8)} ${r.uri}\n      by ${who}  ${n} version${n === 1 ? '' : 's'}${r.current ? `  cid ${short(r.current.cid, 20)}  head proof: ${proofWord(r.current.proof)}` : ''}`
}

export function formatAudit(r: AuditReport): string {
  const L: string[] = []
  const name = r.collection.replace('org.stormlightlabs.malfestio.', '')
  const title = (r.current?.value ?? r.lastValue) as Record<string, unknown> | null
  L.push(`${name} ${r.uri}${typeof title?.title === 'string' ? `  "${title.title}"` : typeof title?.front === 'string' ? `  "${title.front}"` : ''}`)
  L.push(`  status   ${r.status}`)
  L.push(`  author   ${r.did}`)
  L.push(`           now ${handle(r.author.handleNow, r.author.handleNowVerified)}, key ${r.author.signingKeyNow ?? '-'}`)
  L.push(`           then ${handle(r.author.handleThen, r.author.handleThenVerified)}`)
  if (r.repo) {
    L.push(`  repo     ${r.repo.state}${r.repo.stateReason ? ` (${r.repo.stateReason})` : ''}, ${r.repo.active ? 'active' : (r.repo.status ?? 'inactive')}, head rev ${r.repo.rev ?? '-'} commit ${short(r.repo.headCid, 20)}`)
  }
  if (r.current) {
    L.push(`  current  cid ${r.current.cid} rev ${r.current.rev} ${r.current.valid ? 'valid' : `INVALID (${r.current.invalidReason})`}`)
    L.push(`           proof at head ${short(r.current.proofCommit, 20)}: ${proofWord(r.current.proof)}`)
  }
  L.push('', `versions (${r.versions.length})`, ...versionLines(r.versions, '  '))
  if (r.deck) {
    L.push('', `cards (${r.deck.cards.length}; cardRefs lists ${r.deck.cardRefs.length})`)
    for (const c of r.deck.cards) {
      const tags = [c.listed ? 'in cardRefs' : 'NOT in cardRefs', c.claimsDeck ? 'claims the deck' : c.deckRef ? `claims ${c.deckRef}` : 'no deckRef']
      L.push(`  ${recordLine(c)}\n      ${tags.join(', ')}`)
      L.push(...versionLines(c.versions, '      '))
    }
    L.push('', `sources (${r.deck.sources.length})`)
    for (const s of r.deck.sources) L.push(`  ${recordLine(s)}`)
  }
  if (r.card) {
    L.push('', `deck ${r.card.deckRef ?? '(none)'}`)
    if (r.card.deck) L.push(`  ${recordLine(r.card.deck)}`, `      lists this card: ${r.card.listedByDeck ? 'yes' : 'no'}; same author: ${r.card.sameAuthor ? 'yes' : 'no'}`)
  }
  if (r.references.length) {
    L.push('', `references (${r.references.length})`)
    for (const ref of r.references) L.push(`  ${ref.field.padEnd(16)} ${ref.status.padEnd(12)} ${ref.uri}`)
  }
  L.push('', r.flags.length ? `flags (${r.flags.length})` : 'flags: none')
  for (const f of r.flags) L.push(`  ! ${f.code.padEnd(20)} ${f.uri}\n      ${f.message}`)
  return L.join('\n')
}

export function formatVerify(r: StoreVerifyReport): string {
  const L: string[] = []
  const c = r.checked
  L.push(`checked  ${c.blocks} blocks, ${c.commits} commits, ${c.record_versions} versions, ${c.records} records, ${c.repos} repos in ${r.ms} ms`)
  const s = r.skipped
  if (s.purgedVersions || s.tombstones || s.purgedCommits) {
    L.push(`skipped  ${s.purgedVersions} versions and ${s.purgedCommits} commits whose blocks an account deletion purged, ${s.tombstones} purge tombstones`)
  }
  L.push(r.ok ? 'result   OK: everything re-verifies from the stored blocks' : `result   ${r.failures.length} FAILURE${r.failures.length === 1 ? '' : 'S'}`)
  for (const f of r.failures) L.push(`  ${f.row}\n    ${f.code}: ${f.message}`)
  return L.join('\n')
}
