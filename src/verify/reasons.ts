/**
 * Why a change was refused. One closed list shared by the rejections table, metrics, the CLI and tests.
 */
export const REASONS = [
  'bad-frame', // the frame or body does not decode or lacks required fields
  'too-big', // frame, blocks, ops or record over the protocol limits
  'car-invalid', // the CAR does not parse, or its root is not the commit
  'cid-mismatch', // a block's bytes do not hash to its CID
  'commit-mismatch', // commit block fields disagree with the event (did, rev, cid, version)
  'bad-signature', // the commit signature does not verify with the DID's key
  'mst-proof', // an op is not proven by the MST in the blocks (missing or different)
  'missing-prev', // update/delete op without `prev`, or commit without prevData where required
  'inversion-mismatch', // inverting the ops does not give prevData
  'chain-break', // since/prevData do not follow the stored rev/data: repo desynchronized
  'future-rev', // rev timestamp too far in the future
  'identity-unresolved', // DID document missing or unusable (not found, no signing key, bad document, unsupported method)
  'did-tombstoned', // the DID was tombstoned in the PLC directory (by a verified operation, when logs are verified)
  'plc-log-invalid', // the DID's PLC operation log does not verify (signature, genesis hash, order, recovery rules)
  'plc-doc-mismatch', // signed with the key the PLC directory's document names, which the DID's verified log does not back
  'did-web-unsupported', // did:web that cannot be resolved as required (path-based, or a port outside localhost)
  'repo-inactive', // the account is not active: its commits are not applied
] as const

export type ReasonCode = (typeof REASONS)[number]

/** A verification failure with its reason code and the facts that explain it. */
export class VerificationError extends Error {
  readonly reason: ReasonCode
  constructor(reason: ReasonCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'VerificationError'
    this.reason = reason
  }
}
