/**
 * AT-URIs of records (`at://<did or handle>/<collection>/<rkey>`): syntax only, per the atproto
 * syntax rules for DIDs, handles, NSIDs and record keys.
 */

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/
const HANDLE_RE = /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/
const NSID_RE = /^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+$/
const RKEY_RE = /^[a-zA-Z0-9._~:-]{1,512}$/

export interface RecordUri {
  /** a DID, or a handle still to be resolved to one */
  authority: string
  authorityIsDid: boolean
  collection: string
  rkey: string
}

/** A string that is not the AT-URI of a record. */
export class AtUriError extends Error {
  readonly code = 'bad-at-uri'
  constructor(message: string) {
    super(message)
    this.name = 'AtUriError'
  }
}

/**
 * Parses the AT-URI of one record.
 * @throws {AtUriError} naming the part that is wrong
 */
export function parseRecordUri(uri: string): RecordUri {
  if (!uri.startsWith('at://')) throw new AtUriError(`${uri} is not an AT-URI (at://<did>/<collection>/<rkey>)`)
  const rest = uri.slice('at://'.length)
  if (/[?#]/.test(rest)) throw new AtUriError(`${uri}: query and fragment are not part of a record URI`)
  const parts = rest.split('/')
  if (parts.length !== 3) throw new AtUriError(`${uri} does not name one record: expected at://<did>/<collection>/<rkey>`)
  const [authority, collection, rkey] = parts as [string, string, string]
  const authorityIsDid = authority.startsWith('did:')
  if (authorityIsDid ? !DID_RE.test(authority) : !HANDLE_RE.test(authority) || authority.length > 253) {
    throw new AtUriError(`${uri}: ${authority} is not a DID or handle`)
  }
  if (!NSID_RE.test(collection)) throw new AtUriError(`${uri}: ${collection} is not a collection NSID`)
  if (!RKEY_RE.test(rkey) || rkey === '.' || rkey === '..') throw new AtUriError(`${uri}: ${rkey} is not a record key`)
  return { authority: authorityIsDid ? authority : authority.toLowerCase(), authorityIsDid, collection, rkey }
}

/** Every AT-URI string inside a record value, with the field path it sits at (`cardRefs[2]`). */
export function findAtUris(value: unknown, path = ''): { field: string; uri: string }[] {
  if (typeof value === 'string') return value.startsWith('at://') ? [{ field: path, uri: value }] : []
  if (Array.isArray(value)) return value.flatMap((v, i) => findAtUris(v, `${path}[${i}]`))
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => (k === '$type' ? [] : findAtUris(v, path ? `${path}.${k}` : k)))
  }
  return []
}
