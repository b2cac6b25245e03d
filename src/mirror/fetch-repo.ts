/** Downloads a repo CAR (`com.atproto.sync.getRepo`) from the first upstream that serves it. */
import { bodySummary } from './http-body.ts'

export class RepoFetchError extends Error {
  readonly code = 'repo-fetch'
  /** the XRPC error name an upstream answered with (e.g. RepoDeactivated, RepoTakendown) */
  readonly upstreamErrors: string[]
  constructor(message: string, upstreamErrors: string[] = [], options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RepoFetchError'
    this.upstreamErrors = upstreamErrors
  }
}

/** XRPC errors from getRepo that mean "the account is not active", with the status they imply. */
export const INACTIVE_REPO_ERRORS: Record<string, string> = {
  RepoDeactivated: 'deactivated',
  RepoTakendown: 'takendown',
  RepoSuspended: 'suspended',
}

const MAX_REPO_BYTES = 1024 * 1024 * 1024

/**
 * Tries each base URL in order (the repo's PDS first, then the relay).
 * @throws {RepoFetchError} naming every upstream tried and what it answered
 */
export async function fetchRepoCar(did: string, bases: string[], timeoutMs = 60_000): Promise<Uint8Array> {
  const failures: string[] = []
  const names: string[] = []
  for (const base of new Set(bases)) {
    const url = `${base.replace(/\/+$/, '')}/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(did)}`
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
      if (!res.ok) {
        const body = await res.text().catch(() => '')
        failures.push(`${base}: HTTP ${res.status} ${bodySummary(body)}`)
        try {
          const name = (JSON.parse(body) as { error?: unknown }).error
          if (typeof name === 'string') names.push(name)
        } catch {
          // not an XRPC error body
        }
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
  throw new RepoFetchError(`getRepo ${did} failed: ${failures.join('; ') || 'no upstream to ask'}`, names)
}

/** What an upstream says about an account (`com.atproto.sync.getRepoStatus`). */
export interface UpstreamRepoStatus {
  active: boolean
  status?: string
  rev?: string
}

/**
 * Asks each base URL in order for the account's hosting status; the first answer wins.
 * @throws {RepoFetchError} when no upstream answers
 */
export async function fetchRepoStatus(did: string, bases: string[], timeoutMs = 15_000): Promise<UpstreamRepoStatus> {
  const failures: string[] = []
  const names: string[] = []
  for (const base of new Set(bases)) {
    const url = `${base.replace(/\/+$/, '')}/xrpc/com.atproto.sync.getRepoStatus?did=${encodeURIComponent(did)}`
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
      const text = await res.text()
      let body: { active?: unknown; status?: unknown; rev?: unknown; error?: unknown } | null = null
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON
      }
      if (res.ok && typeof body?.active === 'boolean') {
        return {
          active: body.active,
          ...(typeof body.status === 'string' ? { status: body.status } : {}),
          ...(typeof body.rev === 'string' ? { rev: body.rev } : {}),
        }
      }
      if (typeof body?.error === 'string') names.push(body.error)
      failures.push(`${base}: HTTP ${res.status} ${bodySummary(text)}`)
    } catch (err) {
      failures.push(`${base}: ${(err as Error).message}`)
    }
  }
  throw new RepoFetchError(`getRepoStatus ${did} failed: ${failures.join('; ') || 'no upstream to ask'}`, names)
}
