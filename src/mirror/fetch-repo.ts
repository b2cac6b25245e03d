/** Downloads a repo CAR (`com.atproto.sync.getRepo`) from the first upstream that serves it. */

export class RepoFetchError extends Error {
  readonly code = 'repo-fetch'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RepoFetchError'
  }
}

const MAX_REPO_BYTES = 1024 * 1024 * 1024

/**
 * Tries each base URL in order (the repo's PDS first, then the relay).
 * @throws {RepoFetchError} naming every upstream tried and what it answered
 */
export async function fetchRepoCar(did: string, bases: string[], timeoutMs = 60_000): Promise<Uint8Array> {
  const failures: string[] = []
  for (const base of new Set(bases)) {
    const url = `${base.replace(/\/+$/, '')}/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(did)}`
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
      if (!res.ok) {
        const body = await res.text().catch(() => '')
        failures.push(`${base}: HTTP ${res.status} ${body.slice(0, 200)}`)
        continue
      }
      const len = Number(res.headers.get('content-length') ?? 0)
      if (len > MAX_REPO_BYTES) {
        failures.push(`${base}: repo of ${len} bytes is over the limit`)
        continue
      }
      return new Uint8Array(await res.arrayBuffer())
    } catch (err) {
      failures.push(`${base}: ${(err as Error).message}`)
    }
  }
  throw new RepoFetchError(`getRepo ${did} failed: ${failures.join('; ') || 'no upstream to ask'}`)
}
