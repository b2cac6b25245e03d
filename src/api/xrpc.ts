/**
 * XRPC conventions for the read API: errors as `{error, message}` with the status code atproto
 * services use, query parameters checked the way a lexicon-validating server checks them, and the
 * answer for a repo the mirror hides (inactive account), as `com.atproto.sync.*` endpoints give it.
 */
import type { RepoAvailability } from '../store/read-api.ts'

/** An XRPC error response: `status` with body `{error, message}`. */
export class XrpcError extends Error {
  readonly status: number
  readonly error: string
  constructor(status: number, error: string, message: string) {
    super(message)
    this.name = 'XrpcError'
    this.status = status
    this.error = error
  }
}

/** 400 InvalidRequest, or 400 with a named error (RecordNotFound, RepoNotFound, …) as a PDS answers. */
export const invalidRequest = (message: string, error = 'InvalidRequest'): XrpcError => new XrpcError(400, error, message)

/** Reads the query parameters of one XRPC call, with lexicon-style messages. */
export class Params {
  private readonly q: URLSearchParams
  constructor(q: URLSearchParams) {
    this.q = q
  }

  required(name: string): string {
    const v = this.q.get(name)
    if (v === null || v === '') throw invalidRequest(`Params must have the property "${name}"`)
    return v
  }

  optional(name: string): string | undefined {
    const v = this.q.get(name)
    return v === null || v === '' ? undefined : v
  }

  /** An integer within [min, max], or `fallback` when absent. */
  integer(name: string, min: number, max: number, fallback: number): number {
    const v = this.optional(name)
    if (v === undefined) return fallback
    if (!/^-?\d+$/.test(v)) throw invalidRequest(`${name} must be an integer`)
    const n = Number(v)
    if (n < min) throw invalidRequest(`${name} can not be less than ${min}`)
    if (n > max) throw invalidRequest(`${name} can not be greater than ${max}`)
    return n
  }

  boolean(name: string, fallback: boolean): boolean {
    const v = this.optional(name)
    if (v === undefined) return fallback
    if (v === 'true') return true
    if (v === 'false') return false
    throw invalidRequest(`${name} must be a boolean`)
  }
}

/** XRPC error names for an account that is not active, by its status. */
const HIDDEN_REPO_ERRORS: Record<string, string> = {
  takendown: 'RepoTakendown',
  suspended: 'RepoSuspended',
  deactivated: 'RepoDeactivated',
  deleted: 'RepoNotFound',
}

/**
 * The repo, when the mirror may serve its records; otherwise the error a PDS or relay gives:
 * RepoNotFound for an unknown (or deleted) repo, RepoTakendown / RepoSuspended / RepoDeactivated
 * for a hidden one (any other inactive status answers RepoDeactivated, naming the status).
 */
export function availableRepo(repo: RepoAvailability | undefined, asked: string): RepoAvailability {
  if (!repo) throw invalidRequest(`Could not find repo: ${asked}`, 'RepoNotFound')
  if (repo.active) return repo
  const status = repo.status ?? 'inactive'
  const error = HIDDEN_REPO_ERRORS[status] ?? 'RepoDeactivated'
  if (error === 'RepoNotFound') throw invalidRequest(`Could not find repo: ${asked} (account deleted)`, error)
  const says = status === 'takendown' ? 'has been taken down' : status === 'suspended' ? 'has been suspended' : status === 'deactivated' ? 'has been deactivated' : `is not active (${status})`
  throw invalidRequest(`Repo ${says}: ${asked}`, error)
}
