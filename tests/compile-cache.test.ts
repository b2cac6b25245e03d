/**
 * Node's compile cache (bin/compile-cache.js): the CLI keeps the type-stripped sources in
 * node_modules/.cache, so from the second run on neither its main thread nor a worker thread strips
 * TypeScript again (the stripper would keep ≈ 20 MB resident in each). Node's own debug log says
 * which cache entries it reads.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { COMPILE_CACHE_DIR } from '../bin/compile-cache.js'

const root = fileURLToPath(new URL('..', import.meta.url))

function node(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' }
  delete env.NODE_COMPILE_CACHE
  delete env.NODE_DISABLE_COMPILE_CACHE
  return spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', timeout: 60_000 })
}

const strippedFromCache = (stderr: string, file: string) =>
  new RegExp(`retrieving transpile cache for StrippedTypeScript file://[^ ]*/${file.replace(/[./]/g, '\\$&')}\\.\\.\\.success`).test(stderr)

describe('compile cache', () => {
  it('the CLI keeps it in node_modules/.cache, and a second run takes bin/cli.ts from it', () => {
    const first = node(['bin/malfestio-mirror.js', '--help'])
    expect(first.status, first.stderr).toBe(0)
    expect(first.stderr).toContain(COMPILE_CACHE_DIR)
    const second = node(['bin/malfestio-mirror.js', '--help'])
    expect(second.status).toBe(0)
    expect(second.stdout).toContain('Usage: malfestio-mirror')
    expect(strippedFromCache(second.stderr, 'bin/cli.ts')).toBe(true)
    expect(strippedFromCache(second.stderr, 'src/mirror/mirror.ts')).toBe(true)
  })

  it('a worker thread started after it is turned on reads the same cache', () => {
    const script = [
      `import { enableCompileCache } from './bin/compile-cache.js'`,
      `enableCompileCache()`,
      `const { Worker } = await import('node:worker_threads')`,
      `const w = new Worker(new URL('./src/verify/tid.ts', import.meta.url), { execArgv: [] })`,
      `await new Promise((resolve) => w.on('exit', resolve))`,
    ].join('\n')
    const first = node(['-e', script, '--input-type=module'])
    expect(first.status, first.stderr).toBe(0)
    const second = node(['-e', script, '--input-type=module'])
    expect(second.status, second.stderr).toBe(0)
    expect(strippedFromCache(second.stderr, 'src/verify/tid.ts')).toBe(true)
  })

  it('without it (NODE_DISABLE_COMPILE_CACHE) the CLI runs as before, stripping every time', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE', NODE_DISABLE_COMPILE_CACHE: '1' }
    delete env.NODE_COMPILE_CACHE
    const r = spawnSync(process.execPath, ['bin/malfestio-mirror.js', '--help'], { cwd: root, env, encoding: 'utf8', timeout: 60_000 })
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('Usage: malfestio-mirror')
    expect(strippedFromCache(r.stderr, 'bin/cli.ts')).toBe(false)
  })
})
