/** malfestio-mirror: parse the command line, run one command, map errors to one line and an exit code. */
import { ConfigError } from '../src/mirror/config.ts'
import { MirrorFatalError } from '../src/mirror/mirror.ts'
import { SubscriptionFatalError } from '../src/firehose/subscription.ts'
import { StoreOpenError } from '../src/store/db.ts'
import { CaptureFormatError } from '../src/firehose/capture.ts'
import { UsageError } from './args.ts'
import { recordsCommand, rejectionsCommand, statusCommand } from './commands/read.ts'
import { replayCommand, syncCommand } from './commands/stream.ts'
import { backfillCommand, resyncCommand } from './commands/backfill.ts'
import { DiscoveryError } from '../src/mirror/discover.ts'
import { auditCommand, exportProofCommand, verifyCommand } from './commands/provenance.ts'
import { AtUriError } from '../src/verify/at-uri.ts'
import { ProofFailure } from '../src/verify/proof.ts'
import { ProofUnavailableError } from '../src/store/proofs.ts'
import { UnknownRecordError } from '../src/mirror/provenance.ts'
import { captureCommand } from './commands/capture.ts'
import { serveCommand } from './commands/serve.ts'

const USAGE = `malfestio-mirror — a verified firehose mirror of Malfestio records

Usage: malfestio-mirror <command> [flags]

Commands:
  sync        [--relay URL] [--db PATH] [--plc URL] [--collections LIST] [--cursor SEQ] [--backfill] [--connect-attempts N] [--trust-plc-directory]
              [--serve PORT [--host H] [--max-lag S]] [--capture FILE] [--json]
              follow the firehose live (Ctrl-C stops cleanly, cursor saved); --serve: the read API and
              live /metrics in the same process; --capture: record frames and upstream answers to FILE
  serve       [--db PATH] [--port N] [--host H] [--max-lag S] [--json]
              the read API (XRPC getRecord / listRecords / sync.getRecord, /decks, /health, /metrics)
              on a mirror database, beside a sync in another process
  replay      --from SEQ [--to SEQ] [--idle-ms MS] [--relay URL] [--db PATH] [--plc URL] [--trust-plc-directory] [--json]
              replay a range into the mirror and exit
  replay      --file FILE [--from SEQ] [--to SEQ] [--db PATH] [--plc URL] [--json]
              replay a capture file through the same pipeline (its source is the file's upstream)
  capture     --out FILE [--relay URL] [--from SEQ] [--to SEQ] [--idle-ms MS] [--force] [--json]
              record the raw frames of an upstream into a capture file
  status      [--db PATH] [--json]     cursor, records per collection, repos per state, rejections
  records     [--db PATH] [--collection NSID] [--did DID] [--include-hidden] [--json]
  rejections  [--db PATH] [--did DID] [--reason CODE] [--json]
  backfill    [--did DID ...] [--relay URL] [--db PATH] [--plc URL] [--trust-plc-directory] [--json]
              find the repos holding Malfestio records (listReposByCollection on a relay,
              listRepos + describeRepo on a PDS) and resync each (getRepo, fully verified)
  resync      (--did DID ... | --desynchronized) [--relay URL] [--db PATH] [--plc URL] [--trust-plc-directory] [--json]
              resync the named repos, or every repo left desynchronized, now
  audit       <at-uri> [--db PATH] [--json]
              a record's provenance: author, every version re-verified now, cards and sources of a deck, flags
  export-proof <at-uri> [--rev REV] [--out FILE] [--db PATH] [--json]
              the record's proof as a CAR (signed commit + MST path + record), as sync.getRecord returns it
  verify      [--db PATH] [--json]
              re-verify the whole store offline from its blocks; exit 1 and name the rows on any failure

Defaults: --relay wss://bsky.network  --db ./malfestio-mirror.db  --plc https://plc.directory
          --collections org.stormlightlabs.malfestio.*
Environment: MALFESTIO_RELAY, MALFESTIO_DB, MALFESTIO_PLC, MALFESTIO_COLLECTIONS, MALFESTIO_HANDLE_RESOLVER,
             MALFESTIO_TRUST_PLC_DIRECTORY
did:plc keys, handles and PDSes come from each DID's PLC operation log, verified here;
--trust-plc-directory takes them from the directory's document instead (no log check).
`

const COMMANDS: Record<string, (argv: string[]) => number | Promise<number>> = {
  sync: syncCommand,
  replay: replayCommand,
  status: statusCommand,
  records: recordsCommand,
  rejections: rejectionsCommand,
  backfill: backfillCommand,
  resync: resyncCommand,
  audit: auditCommand,
  'export-proof': exportProofCommand,
  verify: verifyCommand,
  capture: captureCommand,
  serve: serveCommand,
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE)
    return name ? 0 : 2
  }
  const command = COMMANDS[name]
  if (!command) {
    process.stderr.write(`malfestio-mirror: unknown command ${name}\n\n${USAGE}`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE)
    return 0
  }
  try {
    return await command(rest)
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
    process.stderr.write(`malfestio-mirror ${name}: unexpected error: ${e.stack ?? e.message}\n`)
    return 1
  }
}
