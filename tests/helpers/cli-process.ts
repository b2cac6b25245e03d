/**
 * Runs the real CLI as a separate process, as a user would: `npx malfestio-mirror …`, or (faster, the
 * same entry file npx resolves through package.json "bin") this Node running bin/malfestio-mirror.js.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string>
  timeoutMs?: number
  /** go through `npx --no-install malfestio-mirror` (default: node bin/malfestio-mirror.js) */
  npx?: boolean
}

/** Resolves with the exit code and output (never rejects on a non-zero exit). */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const [file, pre] = opts.npx ? ['npx', ['--no-install', 'malfestio-mirror']] : [process.execPath, ['bin/malfestio-mirror.js']]
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...pre, ...args],
      { cwd: root, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0
        if (code === null) return reject(err)
        resolve({ code, stdout, stderr })
      },
    )
  })
}

export interface CliProcess {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** resolves when the process exits (code null and the signal's name when killed by a signal) */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

/** Starts the CLI in the background (a long-running `sync`, `serve`, `capture`): stop it with a signal. */
export function startCli(args: string[], opts: { env?: Record<string, string> } = {}): CliProcess {
  const child = spawn(process.execPath, ['bin/malfestio-mirror.js', ...args], { cwd: root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err })),
  )
  return { child, stdout: () => out, stderr: () => err, done }
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
