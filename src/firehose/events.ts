/**
 * The typed messages of `com.atproto.sync.subscribeRepos`, as they come off the wire.
 * Nothing here is trusted: a `CommitEvent` is only a claim until `verify/commit.ts` proves it.
 * CIDs are kept as their base32 strings; byte fields as Uint8Array.
 */

export type OpAction = 'create' | 'update' | 'delete'

export interface RepoOp {
  action: OpAction
  /** `collection/rkey` */
  path: string
  /** new record CID (create/update), null for delete */
  cid: string | null
  /** previous record CID (update/delete), sync 1.1 */
  prev?: string
}

export interface CommitEvent {
  type: 'commit'
  seq: number
  repo: string
  rev: string
  since: string | null
  commit: string
  blocks: Uint8Array
  ops: RepoOp[]
  prevData?: string
  time: string
}

export interface SyncEvent {
  type: 'sync'
  seq: number
  did: string
  rev: string
  blocks: Uint8Array
  time: string
}

export interface IdentityEvent {
  type: 'identity'
  seq: number
  did: string
  handle?: string
  time: string
}

export interface AccountEvent {
  type: 'account'
  seq: number
  did: string
  active: boolean
  status?: string
  time: string
}

export interface InfoEvent {
  type: 'info'
  name: string
  message?: string
}

export type RepoEvent = CommitEvent | SyncEvent | IdentityEvent | AccountEvent

export type StreamEvent = RepoEvent | InfoEvent

/** A decoded frame: a message, a server error (`op: -1`), or a type this code does not know. */
export type Frame =
  | { kind: 'message'; event: StreamEvent }
  | { kind: 'error'; error: string; message?: string }
  | { kind: 'unknown'; t: string; seq?: number }

/** DID of the repo an event is about. */
export const eventDid = (evt: RepoEvent): string => (evt.type === 'commit' ? evt.repo : evt.did)
