/** Read-only commands over the mirror database: status, records, rejections. */
import { openDb } from '../../src/store/db.ts'
import { listRecords } from '../../src/store/records.ts'
import { listRejections } from '../../src/store/rejections.ts'
import { readStatus, type StatusReport } from '../../src/store/status.ts'
import { COMMON, didFlag, nsidFlag, parse, pick, reasonFlag } from '../args.ts'

const out = (s: string) => process.stdout.write(s + '\n')

export const STATUS_FLAGS = COMMON
export const RECORDS_FLAGS = { ...COMMON, collection: { type: 'string' }, did: { type: 'string' }, 'include-hidden': { type: 'boolean', default: false } } as const
export const REJECTIONS_FLAGS = { ...COMMON, did: { type: 'string' }, reason: { type: 'string' } } as const

export function statusCommand(argv: string[]): number {
  const { values } = parse(argv, STATUS_FLAGS)
  const db = openDb(pick(values.db, 'MALFESTIO_DB', './malfestio-mirror.db'), { mustExist: true })
  try {
    const report = readStatus(db)
    out(values.json ? JSON.stringify(report) : formatStatus(report))
  } finally {
    db.close()
  }
  return 0
}

export function formatStatus(r: StatusReport): string {
  const lines: string[] = []
  const kv = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k}=${v}`).join('  ') || '(none)'
  lines.push(`cursor       ${r.cursors.map((c) => `${c.service} @ ${c.seq} (${c.updatedAt}${c.eventTime ? `, event time ${c.eventTime}` : ''})`).join('\n             ') || '(none yet)'}`)
  lines.push(`records      ${r.records.total} (invalid ${r.records.invalid}, hidden ${r.records.hidden})`)
  for (const [c, n] of Object.entries(r.records.byCollection)) lines.push(`  ${c.padEnd(45)} ${n}`)
  lines.push(`versions     ${r.versions}   commits ${r.commits}   identities ${r.identities}`)
  const mode = r.identity.mode === 'verify-plc-log'
    ? 'keys from verified PLC operation logs'
    : r.identity.mode === 'trust-plc-directory'
      ? 'keys from the PLC directory as served (--trust-plc-directory: logs NOT verified)'
      : '(no run yet)'
  lines.push(`identity     ${mode}${r.identity.modeSince ? ` — last run ${r.identity.modeSince}` : ''}`)
  lines.push(`             by key source: ${kv(r.identity.bySource)}   key epochs ${r.identity.keyEpochs} (rotated out ${r.identity.rotatedOut})   directory documents contradicting their log: ${r.identity.docMismatches}`)
  lines.push(`repos        ${r.repos.total}   by state: ${kv(r.repos.byState)}`)
  lines.push(`             by account status: ${kv(r.repos.byStatus)}`)
  for (const d of r.repos.desynchronized.slice(0, 10)) lines.push(`  ${d.state} since ${d.since}  ${d.did}  ${d.reason ?? ''}`)
  if (r.repos.desynchronized.length > 10) lines.push(`  … ${r.repos.desynchronized.length - 10} more (status --json)`)
  lines.push(`handles      verified ${r.handles.verified}   unverified ${r.handles.unverified}`)
  lines.push(`rejections   ${r.rejections.total}   ${kv(r.rejections.byReason)}`)
  if (r.info.length) lines.push(`stream info  ${r.info.map((i) => `${i.name}${i.message ? ` (${i.message})` : ''} at cursor ${i.cursor ?? '-'} ${i.at}`).join('\n             ')}`)
  const c = r.counters
  const pass = c['frames.passthrough'] ?? 0
  lines.push(
    `seen         commits verified ${c['commits.verified'] ?? 0}, stale ${c['commits.stale'] ?? 0}, duplicates ${c['frames.duplicate'] ?? 0}, out of scope ${pass}, resyncs ok ${c['resync.ok'] ?? 0} / failed ${c['resync.failed'] ?? 0}`,
  )
  const bad = Object.entries(c).filter(([k]) => k.startsWith('frames.undecodable.'))
  if (bad.length) lines.push(`undecodable  ${bad.map(([k, v]) => `${k.slice('frames.undecodable.'.length)}=${v}`).join('  ')} (each dropped the connection)`)
  const q = Object.entries(r.queues.depths)
  if (q.length) {
    lines.push(`queues       as of ${r.queues.at} (the mirror's last batch)`)
    for (const [name, d] of q) lines.push(`  ${name.padEnd(28)} ${d.value}${d.max === null ? '' : ` / ${d.max}`}`)
  }
  return lines.join('\n')
}

export function recordsCommand(argv: string[]): number {
  const { values } = parse(argv, RECORDS_FLAGS)
  // a typo in a filter must not look like an empty mirror
  const collection = values.collection === undefined ? undefined : nsidFlag(values.collection as string)
  const did = values.did === undefined ? undefined : didFlag(values.did as string)
  const db = openDb(pick(values.db, 'MALFESTIO_DB', './malfestio-mirror.db'), { mustExist: true })
  try {
    const rows = listRecords(db, {
      collection,
      did,
      includeHidden: values['include-hidden'] as boolean,
    })
    for (const r of rows) {
      out(values.json ? JSON.stringify(r) : `${r.uri}  ${r.cid}  rev ${r.rev}  ${r.valid ? 'valid' : `INVALID: ${r.invalidReason}`}`)
    }
    if (!values.json) process.stderr.write(`${rows.length} records\n`)
  } finally {
    db.close()
  }
  return 0
}

export function rejectionsCommand(argv: string[]): number {
  const { values } = parse(argv, REJECTIONS_FLAGS)
  const did = values.did === undefined ? undefined : didFlag(values.did as string)
  const reason = values.reason === undefined ? undefined : reasonFlag(values.reason as string)
  const db = openDb(pick(values.db, 'MALFESTIO_DB', './malfestio-mirror.db'), { mustExist: true })
  try {
    const rows = listRejections(db, { did, reason })
    for (const r of rows) out(values.json ? JSON.stringify(r) : `seq ${r.seq}  ${r.did}  ${r.reason}: ${r.message}`)
    if (!values.json) process.stderr.write(`${rows.length} rejections\n`)
  } finally {
    db.close()
  }
  return 0
}
