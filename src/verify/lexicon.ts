/**
 * Lexicon validation of record values, with the maintained `@atproto/lexicon` package.
 *
 * Lexicon documents are read at run time from a folder of JSON files (by default the project's
 * `lexicons/` folder). Before a document is handed to the library it is rewritten once: a string
 * `format` that the Lexicon spec does not define (Malfestio uses `"format": "markdown"`) is removed,
 * so the field is validated as a plain string, and the removal is recorded in `LexiconSet.rewrites`.
 * The rewritten document must then pass the library's strict schema check (`parseLexiconDoc`).
 *
 * Record values usually come from DAG-CBOR decoded by `@atcute/cbor` (CID links are
 * `CidLinkWrapper`, bytes are `BytesWrapper`); the JSON forms `{"$link"}` / `{"$bytes"}` are
 * accepted too. Both are converted to what `@atproto/lexicon` checks for: `CID` instances,
 * `Uint8Array`, and `BlobRef` for blobs.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BytesWrapper, CidLinkWrapper, fromBytes } from '@atcute/cbor'
import { BlobRef, Lexicons, lexStringFormat, parseLexiconDoc, type LexiconDoc } from '@atproto/lexicon'
import { CID } from 'multiformats/cid'

/** Outcome of validating one record against its lexicon. */
export type RecordValidity = { valid: true } | { valid: false; reason: string }

/** One unknown string `format` removed from a lexicon document at load time. */
export type FormatRewrite = {
  /** NSID of the document */
  nsid: string
  /** file it was read from, relative to the loaded folder */
  file: string
  /** JSON path of the string definition inside the document, e.g. `defs/main/record/properties/front` */
  path: string
  /** the format that was dropped, e.g. `markdown` */
  format: string
}

/** A loaded, checked set of lexicon documents and a record validator over them. */
export type LexiconSet = {
  /** absolute path of the folder the documents were read from */
  readonly dir: string
  /** NSIDs of every loaded document, sorted */
  readonly nsids: string[]
  /** unknown string formats dropped at load time */
  readonly rewrites: readonly FormatRewrite[]
  /** Validates `value` as a record of `collection` (which must be a record lexicon in this set). */
  validate(collection: string, value: unknown): RecordValidity
}

/** The string formats the Lexicon spec defines (as known to `@atproto/lexicon`). */
const KNOWN_STRING_FORMATS: ReadonlySet<string> = new Set(lexStringFormat.options)

const DEFAULT_DIR = new URL('../../lexicons/', import.meta.url)

/**
 * Loads every `*.json` file under `dir` (recursively, default: the project's `lexicons/` folder)
 * as a lexicon document. Unknown string formats are dropped and recorded; each document must then
 * pass `parseLexiconDoc` (inline objects allowed, see `checkLexiconDoc`). Throws, naming the file, if a file is not valid JSON or not a valid
 * lexicon document, or if two files declare the same NSID.
 */
export function loadMalfestioLexicons(dir: string | URL = DEFAULT_DIR): LexiconSet {
  const root = typeof dir === 'string' ? dir : fileURLToPath(dir)
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .map((f) => join(root, f))
    .sort()
  if (files.length === 0) throw new Error(`no lexicon files in ${root}`)

  const lexicons = new Lexicons()
  const mainTypes = new Map<string, string>()
  const rewrites: FormatRewrite[] = []

  for (const file of files) {
    const rel = relative(root, file)
    let doc: unknown
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new Error(`${rel}: not valid JSON: ${(err as Error).message}`)
    }
    const nsid = isRecordLike(doc) && typeof doc.id === 'string' ? doc.id : rel
    dropUnknownStringFormats(doc, '', (path, format) => rewrites.push({ nsid, file: rel, path, format }))
    let parsed: LexiconDoc
    try {
      parsed = checkLexiconDoc(doc)
    } catch (err) {
      throw new Error(`${rel}: not a valid lexicon document: ${describeSchemaError(err)}`)
    }
    if (mainTypes.has(parsed.id)) throw new Error(`${rel}: duplicate lexicon ${parsed.id}`)
    lexicons.add(parsed)
    mainTypes.set(parsed.id, parsed.defs.main?.type ?? '(no main definition)')
  }

  const nsids = [...mainTypes.keys()].sort()
  return {
    dir: root,
    nsids,
    rewrites,
    validate(collection: string, value: unknown): RecordValidity {
      const mainType = mainTypes.get(collection)
      if (mainType === undefined) return { valid: false, reason: `no lexicon for ${collection}` }
      if (mainType !== 'record') {
        return { valid: false, reason: `${collection} is not a record lexicon (main is ${mainType})` }
      }
      try {
        lexicons.assertValidRecord(collection, toLexValue(value))
        return { valid: true }
      } catch (err) {
        return { valid: false, reason: describeValidationError(err) }
      }
    },
  }
}

let defaultSet: LexiconSet | undefined

/**
 * Validates `value` as a record of `collection` against the project's own lexicons (loaded on
 * first use). A collection with no lexicon gives `{ valid: false, reason: 'no lexicon for <nsid>' }`.
 */
export function validateRecord(collection: string, value: unknown): RecordValidity {
  defaultSet ??= loadMalfestioLexicons()
  return defaultSet.validate(collection, value)
}

/**
 * Removes, in place, every `format` of a `{"type": "string"}` definition that is not one of the
 * spec's string formats, calling `onDrop` for each. Walks the whole document.
 */
function dropUnknownStringFormats(node: unknown, path: string, onDrop: (path: string, format: string) => void): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => dropUnknownStringFormats(item, `${path}/${i}`, onDrop))
    return
  }
  if (!isRecordLike(node)) return
  if (node.type === 'string' && typeof node.format === 'string' && !KNOWN_STRING_FORMATS.has(node.format)) {
    onDrop(path.slice(1), node.format)
    delete node.format
  }
  for (const [key, child] of Object.entries(node)) dropUnknownStringFormats(child, `${path}/${key}`, onDrop)
}

/**
 * Checks `doc` with the library's strict schema (`parseLexiconDoc`) and returns it unchanged.
 * That schema only allows `ref`s, not inline `object` schemas, as object property values and array
 * items, although the Lexicon spec and the interop catalog use inline objects (and the library's
 * validator handles them). So the check runs on a copy in which every such inline object is moved
 * to a synthetic named def and replaced by a `ref` to it; the document actually used keeps its
 * inline objects, so validation and error paths are unaffected.
 */
function checkLexiconDoc(doc: unknown): LexiconDoc {
  const copy: unknown = structuredClone(doc)
  if (isRecordLike(copy) && isRecordLike(copy.defs)) {
    const defs = copy.defs
    let n = 0
    const hoist = (obj: Record<string, any>): Record<string, any> => {
      let name: string
      do name = `inlineObject${n++}`
      while (name in defs)
      defs[name] = obj
      walk(obj)
      return { type: 'ref', ref: `#${name}` }
    }
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk)
      if (!isRecordLike(node)) return
      if (node.type === 'array' && isRecordLike(node.items) && node.items.type === 'object') {
        node.items = hoist(node.items)
      }
      if (isRecordLike(node.properties)) {
        for (const [key, prop] of Object.entries(node.properties)) {
          if (isRecordLike(prop) && prop.type === 'object') node.properties[key] = hoist(prop)
        }
      }
      Object.values(node).forEach(walk)
    }
    Object.values({ ...defs }).forEach(walk)
  }
  parseLexiconDoc(copy)
  return doc as LexiconDoc
}

/**
 * Converts a decoded record into the value model `@atproto/lexicon` validates: CID links
 * (`CidLinkWrapper` or JSON `{"$link"}`) become `CID`, bytes (`BytesWrapper` or JSON `{"$bytes"}`)
 * become `Uint8Array`, and blob objects become `BlobRef`. Anything that does not convert is left
 * as it is, so that the validator reports it. Returns a copy; the input is not modified.
 */
function toLexValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toLexValue)
  if (value === null || typeof value !== 'object') return value
  if (value instanceof CidLinkWrapper) return attempt(() => CID.decode(value.bytes)) ?? value
  if (value instanceof BytesWrapper) return value.buf
  if (value instanceof Uint8Array || CID.asCID(value) !== null) return value
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value

  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
  if (keys.length === 1 && typeof obj.$link === 'string') {
    const link = obj.$link
    return attempt(() => CID.parse(link)) ?? value
  }
  if (keys.length === 1 && typeof obj.$bytes === 'string') {
    const b64 = obj.$bytes
    return attempt(() => decodeBase64Loose(b64)) ?? value
  }
  const out: Record<string, unknown> = {}
  for (const key of keys) out[key] = toLexValue(obj[key])
  if (out.$type === 'blob' || (typeof out.cid === 'string' && typeof out.mimeType === 'string')) {
    return BlobRef.asBlobRef(out) ?? out
  }
  return out
}

/**
 * Decodes JSON `$bytes` (RFC 4648 base64, padding optional). Like the atproto reference stack it
 * tolerates non-zero trailing bits in the last chunk (the interop vectors use `"123"`).
 */
function decodeBase64Loose(b64: string): Uint8Array {
  try {
    return fromBytes({ $bytes: b64 })
  } catch {
    const bare = b64.replace(/={1,2}$/, '')
    if (!/^[A-Za-z0-9+/]*$/.test(bare) || bare.length % 4 === 1) throw new Error('invalid base64')
    const buf = Buffer.from(bare, 'base64')
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  }
}

/** Library messages say "characters" for string `maxLength`/`minLength`, which the spec counts in UTF-8 bytes. */
function describeValidationError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/ must not be (longer|shorter) than (\d+) characters$/, ' must not be $1 than $2 UTF-8 bytes')
}

/** Flattens a zod error from `parseLexiconDoc` into `path: message; …`. */
function describeSchemaError(err: unknown): string {
  if (isRecordLike(err) && Array.isArray(err.issues)) {
    return err.issues
      .map((issue: { path?: unknown[]; message?: string }) => `${(issue.path ?? []).join('/')}: ${issue.message}`)
      .join('; ')
  }
  return err instanceof Error ? err.message : String(err)
}

function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn()
  } catch {
    return undefined
  }
}

function isRecordLike(v: unknown): v is Record<string, any> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}
