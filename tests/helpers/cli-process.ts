/**
 * Runs the real CLI as a separate process, as a user would: `npx malfestio-mirror …`, or (faster, the
 * same entry file npx resolves through package.json "bin") this Node running bin/malfestio-mirror.js.
 */
import { execFile } from 'node:child_process'
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
