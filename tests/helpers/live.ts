/** A mirror following a dev-env PDS live, in-process, for tests that act and then look. */
import type { MirrorConfig } from '../../src/mirror/config.ts'
import type { Mirror } from '../../src/mirror/mirror.ts'
import { runMirror, type RunResult } from '../../src/mirror/run.ts'
import { currentSeq, type Devnet } from './devnet.ts'
import { mirrorConfig } from './mirror.ts'

export interface LiveMirror {
  /** resolves once every event the PDS has sequenced so far is processed and written */
  caughtUp(timeoutMs?: number): Promise<void>
  mirror(): Mirror
  stop(): Promise<RunResult>
}

export async function startLiveMirror(net: Devnet, dbPath: string, over: Partial<MirrorConfig> = {}): Promise<LiveMirror> {
  const ac = new AbortController()
  let mirror: Mirror | undefined
  const done = runMirror(mirrorConfig(net, dbPath, over), { signal: ac.signal, onMirror: (m) => (mirror = m) })
  done.catch(() => undefined)
  return {
    mirror: () => mirror!,
    async caughtUp(timeoutMs = 20_000) {
      const target = await currentSeq(net)
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const s = mirror?.stats()
        if (s && (s.lastSeq ?? -1) >= target && s.inFlight === 0 && (mirror!.cursor() ?? -1) >= target) return
        if (Date.now() > deadline) throw new Error(`mirror did not catch up to seq ${target}: ${JSON.stringify(s)}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    async stop() {
      ac.abort()
      return done
    },
  }
}
