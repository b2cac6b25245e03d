/** malfestio-mirror: parse the command line, run one command, map errors to one line and an exit code. */
import { ConfigError } from '../src/mirror/config.ts'
import { MirrorFatalError } from '../src/mirror/mirror.ts'
import { SubscriptionFatalError } from '../src/firehose/subscription.ts'
import { StoreOpenError } from '../src/store/db.ts'
import { CaptureFormatError } from '../src/firehose/capture.ts'
import { UsageError } from './args.ts'
import type { ParseArgsConfig } from 'node:util'
import { RECORDS_FLAGS, recordsCommand, REJECTIONS_FLAGS, rejectionsCommand, STATUS_FLAGS, statusCommand } from './commands/read.ts'
import { REPLAY_FLAGS, replayCommand, SYNC_FLAGS, syncCommand } from './commands/stream.ts'
import { BACKFILL_FLAGS, backfillCommand, RESYNC_FLAGS, resyncCommand } from './commands/backfill.ts'
import { DiscoveryError } from '../src/mirror/discover.ts'
import { AUDIT_FLAGS, auditCommand, EXPORT_PROOF_FLAGS, exportProofCommand, VERIFY_FLAGS, verifyCommand } from './commands/provenance.ts'
import { AtUriError } from '../src/verify/at-uri.ts'
import { ProofFailure } from '../src/verify/proof.ts'
import { ProofUnavailableError } from '../src/store/proofs.ts'
import { UnknownRecordError } from '../src/mirror/provenance.ts'
import { CAPTURE_FLAGS, captureCommand } from './commands/capture.ts'
import { SERVE_COMMAND_FLAGS, serveCommand } from './commands/serve.ts'

export const USAGE = `malfestio-mirror — a verified firehose mirror of Malfestio records

Usage: malfestio-mirror <command> [flags]        (--help after any command prints this text)

Mirror the stream:
  sync        [--relay URL] [--db PATH] [--plc URL] [--collections LIST] [--cursor SEQ] [--backfill]
              [--serve PORT [--host H] [--max-lag S]] [--capture FILE] [--stall-ms MS] [--connect-attempts N] [--json]
              follow the firehose live from the stored cursor (Ctrl-C stops cleanly, cursor saved);
              --backfill: also fetch every repo that already holds records in scope; --serve: the read
              API and live /metrics in the same process; --capture: record frames and upstream answers to FILE
  replay      --from SEQ [--to SEQ] [--idle-ms MS] [--relay URL] [--db PATH] [--plc URL] [--collections LIST]
              [--stall-ms MS] [--connect-attempts N] [--json]
              replay a range into the mirror and exit (at --to, or after --idle-ms of silence, default 3000)
  replay      --file FILE [--from SEQ] [--to SEQ] [--relay URL] [--db PATH] [--plc URL] [--collections LIST] [--json]
              replay a capture file through the same pipeline (its source is the file's upstream)
  capture     --out FILE [--relay URL] [--from SEQ] [--to SEQ] [--idle-ms MS] [--stall-ms MS] [--force] [--json]
              record the raw frames of an upstream into a capture file
  backfill    [--did DID ...] [--relay URL] [--db PATH] [--plc URL] [--collections LIST] [--json]
              find the repos holding records in scope (listReposByCollection on a relay,
              listRepos + describeRepo on a PDS) and resync each (getRepo, fully verified); exit 1 if one failed
  resync      (--did DID ... | --desynchronized) [--relay URL] [--db PATH] [--plc URL] [--collections LIST] [--json]
              resync the named repos, or every repo left desynchronized, now (for a stopped mirror)

Read the mirror (offline):
  status      [--db PATH] [--json]
              cursor, records per collection, repos per state and account status, rejections per reason
  records     [--db PATH] [--collection NSID] [--did DID] [--include-hidden] [--json]
              one line (--json: one object) per record: uri, cid, rev, did, collection, rkey, valid, value
  rejections  [--db PATH] [--did DID] [--reason CODE] [--json]
              refused changes: seq, DID, reason code, message
  audit       <at-uri> [--db PATH] [--json]
              a record's provenance: author, every version re-verified now, cards and sources of a deck, flags
  export-proof <at-uri> [--rev REV] [--out FILE] [--db PATH] [--json]
              the record's proof as a CAR (signed commit + MST path + record), as sync.getRecord returns it
  verify      [--db PATH] [--json]
              re-verify the whole store offline from its blocks; exit 1 and name the rows on any failure
  serve       [--db PATH] [--port N] [--host H] [--max-lag S] [--json]
              the read API (XRPC getRecord / listRecords / sync.getRecord, /decks, /health, /metrics)
              on a mirror database, beside a sync in another process

Shared flags (sync, replay, backfill, resync):
  --trust-plc-directory     take did:plc keys, handles and PDSes from the directory's document as served;
                            by default they come from each DID's PLC operation log, verified here
  --identity-max-age H      a DID's identity proven from its verified log and kept in the database is used
                            again at the DID's first event after a start while younger than H hours
                            (default 24; 0 = fetch and verify the log again)
  --handle-resolver URL     check handles with this PDS's resolveHandle instead of DNS / HTTPS
  --verify-threads N        worker threads verifying commits, each DID always on the same one (default: cores − 1;
                            0 = verify on the main thread)

Defaults: --relay wss://bsky.network  --db ./malfestio-mirror.db  --plc https://plc.directory
          --collections org.stormlightlabs.malfestio.*  --port 2585  --host 127.0.0.1
Environment: MALFESTIO_RELAY, MALFESTIO_DB, MALFESTIO_PLC, MALFESTIO_COLLECTIONS, MALFESTIO_HANDLE_RESOLVER,
             MALFESTIO_TRUST_PLC_DIRECTORY (1/true), MALFESTIO_IDENTITY_MAX_AGE, MALFESTIO_VERIFY_THREADS,
             MALFESTIO_PORT, MALFESTIO_HOST (a flag wins)
Exit codes: 0 done, 1 run-time failure (one line on stderr), 2 usage error
`

type Flags = NonNullable<ParseArgsConfig['options']>

/** Every command with the flags it accepts (the usage text above must name each one: a test checks it). */
export const COMMANDS: Record<string, { run: (argv: string[]) => number | Promise<number>; flags: Flags }> = {
  sync: { run: syncCommand, flags: SYNC_FLAGS },
  replay: { run: replayCommand, flags: REPLAY_FLAGS },
  capture: { run: captureCommand, flags: CAPTURE_FLAGS },
  backfill: { run: backfillCommand, flags: BACKFILL_FLAGS },
  resync: { run: resyncCommand, flags: RESYNC_FLAGS },
  status: { run: statusCommand, flags: STATUS_FLAGS },
  records: { run: recordsCommand, flags: RECORDS_FLAGS },
  rejections: { run: rejectionsCommand, flags: REJECTIONS_FLAGS },
  audit: { run: auditCommand, flags: AUDIT_FLAGS },
  'export-proof': { run: exportProofCommand, flags: EXPORT_PROOF_FLAGS },
  verify: { run: verifyCommand, flags: VERIFY_FLAGS },
  serve: { run: serveCommand, flags: SERVE_COMMAND_FLAGS },
}

/** An operating-system error (a path that cannot be opened or written, a full disk): the user's to fix, not a bug. */
const isSystemError = (err: unknown): err is NodeJS.ErrnoException =>
  err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string'

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  if (!name) {
    // no command is a usage error: the help goes where errors go, so `x=$(malfestio-mirror)` stays empty
    process.stderr.write(USAGE)
    return 2
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (!command) {
    process.stderr.write(`malfestio-mirror: unknown command ${name} (commands: ${Object.keys(COMMANDS).join(', ')}; --help for their flags)\n`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE)
    return 0
  }
  try {
    return await command.run(rest)
  } catch (err) {
    const e = err as Error
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof AtUriError) {
      process.stderr.write(`malfestio-mirror ${name}: ${e.message}\n`)
      return 2
    }
    if (
      err instanceof StoreOpenError ||
      err instanceof MirrorFatalError ||
      err instanceof SubscriptionFatalError ||
      err instanceof DiscoveryError ||
      err instanceof UnknownRecordError ||
      err instanceof ProofUnavailableError ||
      err instanceof ProofFailure ||
      err instanceof CaptureFormatError
    ) {
      process.stderr.write(`malfestio-mirror ${name}: ${e.message}\n`)
      return 1
    }
    if (isSystemError(err)) {
      // e.g. "ENOENT: no such file or directory, open '/no/such/dir/deck.car'": the message names the path
      process.stderr.write(`malfestio-mirror ${name}: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`malfestio-mirror ${name}: unexpected error: ${e.stack ?? e.message}\n`)
    return 1
  }
}
