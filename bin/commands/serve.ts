/**
 * `serve`: the read API on a mirror database, as its own process (beside a `sync` on the same file,
 * or alone); and the same server inside `sync --serve PORT`.
 */
import { startApiServer, type LiveHealth, type RunningApi } from '../../src/api/server.ts'
import { deckView } from '../../src/mirror/deck-view.ts'
import { createLiveMetrics, createStoreMetrics, type LiveMetrics } from '../../src/mirror/metrics.ts'
import { openDb, type Db } from '../../src/store/db.ts'
import { COMMON, parse, pick, seqFlag, UsageError } from '../args.ts'

export const SERVE_FLAGS = {
  host: { type: 'string' },
  'max-lag': { type: 'string' },
} as const

export interface ServeOptions {
  dbPath: string
  port: number
  host: string
  maxLagSeconds?: number
  /** create the database when missing (`sync --serve` on a new mirror) */
  create?: boolean
  /** in `sync --serve`: the running mirror's metrics and health */
  live?: { metrics: LiveMetrics; health: () => LiveHealth }
}

export function portFlag(name: string, value: string): number {
  const n = seqFlag(name, value)!
  if (n > 65535) throw new UsageError(`--${name} must be a TCP port (0-65535), got ${value}`)
  return n
}

/**
 * Opens a read-only connection (after bringing the schema up to date with a short read-write open:
 * this program may be newer than the database) and starts the API on it.
 */
export async function startServing(o: ServeOptions): Promise<{ api: RunningApi; db: Db }> {
  openDb(o.dbPath, { mustExist: !o.create }).close()
  const db = openDb(o.dbPath, { readonly: true })
  try {
    const metrics = o.live?.metrics.text ?? createStoreMetrics(db).text
    const api = await startApiServer({ db, port: o.port, host: o.host, metrics, deckView, health: o.live?.health, maxLagSeconds: o.maxLagSeconds })
    return { api, db }
  } catch (err) {
    db.close()
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      throw new UsageError(`cannot listen on ${o.host}:${o.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`)
    }
    throw err
  }
}

export function serveBanner(url: string, dbPath: string, source: 'live' | 'database'): string {
  return [
    `serving ${dbPath} at ${url}  (metrics: ${source === 'live' ? 'this mirror, live' : 'from the database'})`,
    `  ${url}/health`,
    `  ${url}/metrics`,
    `  ${url}/xrpc/com.atproto.repo.listRecords?repo=<did>&collection=org.stormlightlabs.malfestio.deck`,
    `  ${url}/decks/<did>/<rkey>`,
  ].join('\n')
}

export { createLiveMetrics }

export const SERVE_COMMAND_FLAGS = { ...COMMON, port: { type: 'string' }, ...SERVE_FLAGS } as const

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, SERVE_COMMAND_FLAGS)
  const dbPath = pick(values.db, 'MALFESTIO_DB', './malfestio-mirror.db')
  const port = portFlag('port', pick(values.port, 'MALFESTIO_PORT', '2585'))
  const host = pick(values.host, 'MALFESTIO_HOST', '127.0.0.1')
  const maxLag = values['max-lag'] === undefined ? undefined : seqFlag('max-lag', values['max-lag'] as string)
  const { api, db } = await startServing({ dbPath, port, host, maxLagSeconds: maxLag })
  if (values.json) process.stdout.write(JSON.stringify({ url: api.url, db: dbPath, metrics: 'database' }) + '\n')
  else process.stderr.write(serveBanner(api.url, dbPath, 'database') + '\n')
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  await api.close()
  db.close()
  return 0
}
