/** Runs the real CLI as a separate process (`npx malfestio-mirror …`), as a user would. */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Resolves with the exit code and output (never rejects on a non-zero exit). */
export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'npx',
      ['--no-install', 'malfestio-mirror', ...args],
      { cwd: root, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0
        if (code === null) return reject(err)
        resolve({ code, stdout, stderr })
      },
    )
  })
}
