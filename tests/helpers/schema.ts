/** Databases as older releases left them, for migration tests. */
import Database from 'better-sqlite3'
import { cidBinary } from '../../src/store/blocks.ts'
import { MIGRATIONS } from '../../src/store/schema.ts'

/** A database as an older release left it: the first `level` migrations, run as `migrate()` runs them. */
export function databaseAtSchema(path: string, level: number): Database.Database {
  const old = new Database(path)
  old.function('cid_binary', (cid: string) => cidBinary(cid))
  for (const [i, sql] of MIGRATIONS.slice(0, level).entries()) {
    old.exec(sql)
    old.pragma(`user_version = ${i + 1}`)
  }
  return old
}
