/**
 * Each bench scenario runs in its own Node process, so its peak RSS and CPU profile are its own and
 * one scenario's garbage does not slow the next. The parent sends the input over IPC; the child
 * reports progress lines and one result.
 */
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { COMPILE_CACHE_DIR } from '../../bin/compile-cache.js'

/** How the CLI runs node (its shebang, `#!/usr/bin/env -S [NAME=value …] node [flag …]`, and its compile cache): our scenarios run the same way. */
export interface NodeSetup {
  env: Record<string, string>
  flags: string[]
}

export function cliNodeSetup(): NodeSetup {
  const first = readFileSync(new URL('../../bin/malfestio-mirror.js', import.meta.url), 'utf8').split('\n', 1)[0]!
  const m = /^#!\/usr\/bin\/env(?: -S)?((?: [A-Za-z_][A-Za-z0-9_]*=\S*)*) node(.*)$/.exec(first)
  if (!m) throw new Error(`bin/malfestio-mirror.js: unexpected shebang ${first}`)
  const env = Object.fromEntries(
    m[1]!.trim().split(/\s+/).filter(Boolean).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
  )
  // the entry turns Node's compile cache on in its folder, or in the one NODE_COMPILE_CACHE names
  // (bin/compile-cache.js); the variable does the same for a scenario
  if (!process.env.NODE_DISABLE_COMPILE_CACHE) env.NODE_COMPILE_CACHE = process.env.NODE_COMPILE_CACHE ?? COMPILE_CACHE_DIR
  return { env, flags: m[2]!.trim().split(/\s+/).filter(Boolean) }
}

type ChildMessage<T> = { type: 'progress'; line: string } | { type: 'result'; result: T } | { type: 'error'; message: string }

export interface ChildOptions {
  /** extra node flags (e.g. --cpu-prof) */
  execArgv?: string[]
  /** environment variables added to this process's */
  env?: Record<string, string>
  onProgress?: (line: string) => void
}

/** Runs a scenario script (one that calls `childMain`) and resolves with its result. */
export function runChild<T>(script: URL, input: unknown, opts: ChildOptions = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(fileURLToPath(script), [], {
      execArgv: [...(opts.execArgv ?? [])],
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    })
    let result: { value: T } | undefined
    let failure: string | undefined
    child.on('message', (m: ChildMessage<T>) => {
      if (m.type === 'progress') opts.onProgress?.(m.line)
      else if (m.type === 'result') result = { value: m.result }
      else failure = m.message
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (result && code === 0) resolve(result.value)
      else reject(new Error(`${fileURLToPath(script)} failed (${signal ?? `exit ${code}`}): ${failure ?? 'no result'}`))
    })
    child.send({ type: 'input', input })
  })
}

/** The child side: waits for the input, runs `fn`, sends the result and exits. */
export function childMain<I, O>(fn: (input: I, progress: (line: string) => void) => Promise<O>): void {
  process.once('message', async (m: { type: 'input'; input: I }) => {
    const progress = (line: string) => process.send!({ type: 'progress', line })
    try {
      const result = await fn(m.input, progress)
      process.send!({ type: 'result', result }, () => process.exit(0))
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).stack ?? String(err) }, () => process.exit(1))
    }
  })
}
