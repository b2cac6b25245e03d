/**
 * Opening the mirror database: SQLite tuned once here (WAL, synchronous=NORMAL, busy_timeout),
 * migrations applied, the file created owner-only.
 */
import { closeSync, existsSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { cidBinary } from './blocks.ts'
import { MIGRATIONS } from './schema.ts'

export type Db = Database.Database

export class StoreOpenError extends Error {
  readonly code = 'db-open'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreOpenError'
  }
}

export interface OpenOptions {
  readonly?: boolean
  /** fail when the file does not exist (read-only commands) */
  mustExist?: boolean
}

/**
 * Opens (creating when allowed) the database at `path` and brings its schema up to date.
 * @throws {StoreOpenError} with a one-line reason (missing file, unwritable folder, not a database)
 */
export function openDb(path: string, opts: OpenOptions = {}): Db {
  const memory = path === ':memory:'
  if (!memory && !existsSync(path)) {
    if (opts.mustExist || opts.readonly) throw new StoreOpenError(`no mirror database at ${path} (run sync or replay first)`)
    try {
      // created by us with owner-only permissions before SQLite opens it
      closeSync(openSync(path, 'wx', 0o600))
    } catch (err) {
      // another process created it between our check and our create: fine, it is owner-only too
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreOpenError(`cannot create database ${path}: ${(err as Error).message} (is ${dirname(path)} writable?)`, { cause: err })
      }
    }
  }
  // SQLite answers "database is locked" without waiting for its busy handler in a few moments of a
  // new WAL database's life (switching to WAL, the first reader meeting the last writer's close):
  // another process opening the same file then is not an error, so the whole open is tried again
  const deadline = Date.now() + 15_000
  for (let attempt = 1; ; attempt++) {
    let db: Db | undefined
    try {
      db = new Database(path, { readonly: !!opts.readonly, fileMustExist: !memory })
      cachePreparedStatements(db)
      db.pragma('busy_timeout = 5000')
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL')
        db.pragma('synchronous = NORMAL')
        // checkpoints every ~40 MB of WAL instead of every 4 MB: each one rewrites the index pages
        // that every batch touches (blocks, commits and versions are keyed by repo or URI, so a batch
        // dirties pages all over them); the bench measured the default's checkpoints at a sixth of the CPU
        db.pragma('wal_autocheckpoint = 10000')
        db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`)
        // 16 MB of page cache (default 2 MB): the hot index pages stay in memory between batches
        // (bench: 8 MB cost a fifth more time in batches; 32 MB saved up to a tenth of it and kept
        // ≈ 10 MB more resident)
        db.pragma('cache_size = -16384')
        migrate(db)
      } else {
        checkVersion(db)
      }
      return db
    } catch (err) {
      db?.close()
      if (err instanceof StoreOpenError) throw err
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY') && Date.now() < deadline) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 + Math.random() * 30 * Math.min(attempt, 10))
        continue
      }
      throw new StoreOpenError(`cannot open database ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
}

const STATEMENT_CACHE_MAX = 1000

/**
 * The store prepares its SQL where it runs it (simple call sites), and compiling a statement costs
 * more than running it: on the bench, `prepare` was the largest single cost of a batch. So each
 * connection keeps its compiled statements, keyed by SQL text. A cached statement is handed out with
 * its result modes reset, because `pluck`/`raw`/`expand` stick to a statement. (Nothing in the store
 * iterates a statement, the one use that would make sharing unsafe.)
 */
function cachePreparedStatements(db: Db): void {
  const prepare = db.prepare.bind(db)
  const cache = new Map<string, Database.Statement>()
  db.prepare = ((sql: string) => {
    const hit = cache.get(sql)
    if (hit) {
      if (hit.reader) hit.pluck(false).raw(false).expand(false)
      return hit
    }
    const fresh = prepare(sql)
    if (cache.size >= STATEMENT_CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(sql, fresh)
    return fresh
  }) as Db['prepare']
}

function migrate(db: Db): void {
  // Two processes may open a new database at once (`status` while `sync` starts): each migration
  // step takes the write lock first (BEGIN IMMEDIATE) and re-reads the version under it, so the
  // second opener waits (busy_timeout) and then finds the work done.
  const version = () => db.pragma('user_version', { simple: true }) as number
  // migrations 8 and 12 turn stored CID strings into their bytes with the store's own parser
  db.function('cid_binary', { deterministic: true }, (cid: unknown) => cidBinary(String(cid)))
  for (;;) {
    const done = db.transaction(() => {
      const v = version()
      if (v > MIGRATIONS.length) {
        throw new StoreOpenError(`database schema v${v} is newer than this program (v${MIGRATIONS.length})`)
      }
      if (v === MIGRATIONS.length) return true
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v + 1}`)
      return false
    }).immediate()
    if (done) return
  }
}

function checkVersion(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current === 0) throw new StoreOpenError('not a malfestio-mirror database (no schema)')
  if (current > MIGRATIONS.length) throw new StoreOpenError(`database schema v${current} is newer than this program`)
}

export const nowIso = (): string => new Date().toISOString()
