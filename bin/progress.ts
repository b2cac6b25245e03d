/** Progress on stderr, the same way for every long-running command. */
import type { ConnectionState } from '../src/firehose/subscription.ts'

/** What the connection is doing, in the words the progress lines use. */
export function connectionWords(c: ConnectionState | { state: 'idle' }): string {
  if (c.state === 'reconnecting') return `reconnecting in ${(c.inMs / 1000).toFixed(1)} s (${c.reason})`
  if (c.state === 'stalled') return `stalled ${(c.silentMs / 1000).toFixed(0)} s`
  return c.state
}

export interface ProgressWriterOptions {
  /** with --json the terminal gets plain lines too: stdout stays parseable and stderr readable in logs */
  json?: boolean
  /** off a terminal (a log file, a pipe): at most one line per this many ms */
  everyMs: number
  /** on a terminal: at most one redraw per this many ms (default: every update) */
  ttyEveryMs?: number
}

/**
 * A progress writer: on a terminal one line redrawn in place, elsewhere a full line now and then —
 * always the final one, and any marked urgent (a connection that changed state).
 */
export function progressWriter(o: ProgressWriterOptions): (text: string, mark?: { final?: boolean; urgent?: boolean }) => void {
  const tty = Boolean(process.stderr.isTTY) && !o.json
  let last = 0
  return (text, mark = {}) => {
    const now = Date.now()
    if (!mark.final && !mark.urgent && now - last < (tty ? (o.ttyEveryMs ?? 0) : o.everyMs)) return
    last = now
    process.stderr.write(tty ? `\r\x1b[2K${text}${mark.final ? '\n' : ''}` : `${text}\n`)
  }
}
