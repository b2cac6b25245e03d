import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { BytesWrapper, CidLinkWrapper, decode, encode } from '@atcute/cbor'
import { parseLexiconDoc } from '@atproto/lexicon'
import { CID } from 'multiformats/cid'
import { loadMalfestioLexicons, validateRecord, type RecordValidity } from '../src/verify/lexicon.ts'

const NS = 'org.stormlightlabs.malfestio'
const NOW = '2026-01-05T12:34:56.789Z'
const DID = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const at = (collection: string, rkey = '3lfxyz2abcd22') => `at://${DID}/${NS}.${collection}/${rkey}`

const invalid = (reason: string | RegExp) =>
  expect.objectContaining({ valid: false, reason: typeof reason === 'string' ? reason : expect.stringMatching(reason) })
const VALID: RecordValidity = { valid: true }

type Case = { name: string; record: Record<string, unknown>; expected: RecordValidity | ReturnType<typeof invalid> }

/** Builds the cases for one record type from a minimal valid record and a full valid record. */
function cases(type: string, minimal: Record<string, unknown>, full: Record<string, unknown>, extra: Case[]): Case[] {
  const $type = `${NS}.${type}`
  const base: Record<string, unknown> = { $type, ...minimal }
  const requiredKey = Object.keys(minimal).find((k) => k !== 'createdAt')!
  const missing = { ...base }
  delete missing[requiredKey]
  return [
    { name: 'minimal record is valid', record: base, expected: VALID },
    { name: 'full record is valid', record: { $type, ...full }, expected: VALID },
    { name: `missing required ${requiredKey}`, record: missing, expected: invalid(`Record must have the property "${requiredKey}"`) },
    { name: 'missing required createdAt', record: { ...base, createdAt: undefined }, expected: invalid('Record must have the property "createdAt"') },
    { name: 'bad datetime in createdAt', record: { ...base, createdAt: 'yesterday' }, expected: invalid(/^Record\/createdAt must be an valid atproto datetime/) },
    { name: 'impossible month in createdAt', record: { ...base, createdAt: '2026-13-01T00:00:00Z' }, expected: invalid(/^Record\/createdAt must be an valid atproto datetime/) },
    { name: 'wrong $type', record: { ...base, $type: `${NS}.nope` }, expected: invalid(/^Invalid \$type: must be lex:/) },
    { name: 'missing $type', record: { ...minimal }, expected: invalid('Record/$type must be a string') },
    { name: 'not an object', record: ['x'] as unknown as Record<string, unknown>, expected: invalid(/must be an object|must be a string/) },
    ...extra,
  ]
}

const long = (n: number) => 'x'.repeat(n)

const MALFESTIO: Record<string, Case[]> = {
  deck: cases(
    'deck',
    { title: 'Stormlight vocabulary', createdAt: NOW },
    {
      title: 'Stormlight vocabulary',
      description: 'Words of Radiance',
      tags: ['cosmere', 'fantasy'],
      cardRefs: [at('card'), at('card', '3lfxyz2abce22')],
      sourceRefs: [at('source.article')],
      license: 'CC-BY-4.0',
      createdAt: NOW,
    },
    [
      { name: 'title of 300 bytes is valid', record: { $type: `${NS}.deck`, title: long(300), createdAt: NOW }, expected: VALID },
      { name: 'title too long', record: { $type: `${NS}.deck`, title: long(301), createdAt: NOW }, expected: invalid('Record/title must not be longer than 300 UTF-8 bytes') },
      { name: 'title limit counts UTF-8 bytes (101 × 3-byte char)', record: { $type: `${NS}.deck`, title: '語'.repeat(101), createdAt: NOW }, expected: invalid('Record/title must not be longer than 300 UTF-8 bytes') },
      { name: 'description too long', record: { $type: `${NS}.deck`, title: 't', description: long(3001), createdAt: NOW }, expected: invalid('Record/description must not be longer than 3000 UTF-8 bytes') },
      { name: 'title of wrong type', record: { $type: `${NS}.deck`, title: 42, createdAt: NOW }, expected: invalid('Record/title must be a string') },
      { name: 'tags not an array', record: { $type: `${NS}.deck`, title: 't', tags: 'a,b', createdAt: NOW }, expected: invalid('Record/tags must be an array') },
      { name: 'too many tags', record: { $type: `${NS}.deck`, title: 't', tags: Array.from({ length: 65 }, (_, i) => `t${i}`), createdAt: NOW }, expected: invalid('Record/tags must not have more than 64 elements') },
      { name: 'https URL in cardRefs is not an at-uri', record: { $type: `${NS}.deck`, title: 't', cardRefs: [at('card'), 'https://example.com/card/1'], createdAt: NOW }, expected: invalid('Record/cardRefs/1 must be a valid at-uri') },
      { name: 'malformed at-uri in cardRefs', record: { $type: `${NS}.deck`, title: 't', cardRefs: [`at://${DID}/not a nsid/3k`], createdAt: NOW }, expected: invalid('Record/cardRefs/0 must be a valid at-uri') },
      { name: 'non-string in cardRefs', record: { $type: `${NS}.deck`, title: 't', cardRefs: [7], createdAt: NOW }, expected: invalid('Record/cardRefs/0 must be a string') },
    ],
  ),
  card: cases(
    'card',
    { deckRef: at('deck'), front: 'Q', back: 'A', createdAt: NOW },
    {
      deckRef: at('deck'),
      front: '# Highstorm\n\nWhat **is** a _highstorm_?',
      back: '- a storm\n- [wiki](https://coppermind.net)',
      cardType: 'cloze',
      hints: ['weather'],
      media: [{ uri: 'https://example.com/storm.png', kind: 'image', alt: 'a storm' }],
      createdAt: NOW,
    },
    [
      { name: 'markdown front/back accepted as plain strings', record: { $type: `${NS}.card`, deckRef: at('deck'), front: '```js\nx\n```\n> *quote* <b>html</b> [[ ]]', back: '', createdAt: NOW }, expected: VALID },
      { name: 'front too long', record: { $type: `${NS}.card`, deckRef: at('deck'), front: long(10_001), back: 'A', createdAt: NOW }, expected: invalid('Record/front must not be longer than 10000 UTF-8 bytes') },
      { name: 'back of wrong type', record: { $type: `${NS}.card`, deckRef: at('deck'), front: 'Q', back: { text: 'A' }, createdAt: NOW }, expected: invalid('Record/back must be a string') },
      { name: 'deckRef not an at-uri', record: { $type: `${NS}.card`, deckRef: 'deck-1', front: 'Q', back: 'A', createdAt: NOW }, expected: invalid('Record/deckRef must be a valid at-uri') },
      { name: 'unknown cardType value is allowed (knownValues is open)', record: { $type: `${NS}.card`, deckRef: at('deck'), front: 'Q', back: 'A', cardType: 'reversed', createdAt: NOW }, expected: VALID },
      { name: 'media item missing kind', record: { $type: `${NS}.card`, deckRef: at('deck'), front: 'Q', back: 'A', media: [{ uri: 'https://example.com/a.png' }], createdAt: NOW }, expected: invalid('Record/media/0 must have the property "kind"') },
      { name: 'media uri not a uri', record: { $type: `${NS}.card`, deckRef: at('deck'), front: 'Q', back: 'A', media: [{ uri: 'storm.png', kind: 'image' }], createdAt: NOW }, expected: invalid('Record/media/0/uri must be a uri') },
    ],
  ),
  note: cases(
    'note',
    { title: 'Surges', body: 'x', createdAt: NOW },
    {
      title: 'Surges',
      body: '## Ten Surges\n\n1. Adhesion\n2. Gravitation',
      tags: ['magic'],
      links: [{ uri: at('deck'), title: 'deck', type: 'deck' }],
      createdAt: NOW,
      updatedAt: '2026-01-06T00:00:00Z',
      visibility: 'public',
    },
    [
      { name: 'markdown body accepted as a plain string', record: { $type: `${NS}.note`, title: 't', body: '| a | b |\n|---|---|\n| 1 | 2 |', createdAt: NOW }, expected: VALID },
      { name: 'body of 100000 bytes is valid', record: { $type: `${NS}.note`, title: 't', body: long(100_000), createdAt: NOW }, expected: VALID },
      { name: 'body too long', record: { $type: `${NS}.note`, title: 't', body: long(100_001), createdAt: NOW }, expected: invalid('Record/body must not be longer than 100000 UTF-8 bytes') },
      { name: 'title too long', record: { $type: `${NS}.note`, title: long(301), body: 'b', createdAt: NOW }, expected: invalid('Record/title must not be longer than 300 UTF-8 bytes') },
      { name: 'body of wrong type', record: { $type: `${NS}.note`, title: 't', body: ['b'], createdAt: NOW }, expected: invalid('Record/body must be a string') },
      { name: 'bad updatedAt', record: { $type: `${NS}.note`, title: 't', body: 'b', createdAt: NOW, updatedAt: '06/01/2026' }, expected: invalid(/^Record\/updatedAt must be an valid atproto datetime/) },
      { name: 'link missing uri', record: { $type: `${NS}.note`, title: 't', body: 'b', links: [{ title: 'x' }], createdAt: NOW }, expected: invalid('Record/links/0 must have the property "uri"') },
    ],
  ),
  collection: cases(
    'collection',
    { title: 'Path to Radiance', createdAt: NOW },
    {
      title: 'Path to Radiance',
      description: 'Start here',
      items: [
        { type: 'deck', ref: at('deck'), note: 'first' },
        { type: 'lecture', ref: at('source.lecture') },
      ],
      tags: ['path'],
      createdAt: NOW,
    },
    [
      { name: 'title too long', record: { $type: `${NS}.collection`, title: long(301), createdAt: NOW }, expected: invalid('Record/title must not be longer than 300 UTF-8 bytes') },
      { name: 'items of wrong type', record: { $type: `${NS}.collection`, title: 't', items: { type: 'deck', ref: at('deck') }, createdAt: NOW }, expected: invalid('Record/items must be an array') },
      { name: 'item ref not an at-uri', record: { $type: `${NS}.collection`, title: 't', items: [{ type: 'deck', ref: 'https://example.com' }], createdAt: NOW }, expected: invalid('Record/items/0/ref must be a valid at-uri') },
      { name: 'item missing type', record: { $type: `${NS}.collection`, title: 't', items: [{ ref: at('deck') }], createdAt: NOW }, expected: invalid('Record/items/0 must have the property "type"') },
    ],
  ),
  'source.article': cases(
    'source.article',
    { url: 'https://example.com/a', title: 'On Spren', createdAt: NOW },
    {
      url: 'https://example.com/a',
      title: 'On Spren',
      author: 'Navani',
      publishedAt: '1174-04-01T00:00:00Z',
      extractedTextRef: at('note'),
      highlights: [{ quote: 'Life before death', start: 0, end: 17 }],
      createdAt: NOW,
    },
    [
      { name: 'highlight quote too long', record: { $type: `${NS}.source.article`, url: 'https://example.com/a', title: 't', highlights: [{ quote: long(5001) }], createdAt: NOW }, expected: invalid('Record/highlights/0/quote must not be longer than 5000 UTF-8 bytes') },
      { name: 'highlight start of wrong type', record: { $type: `${NS}.source.article`, url: 'https://example.com/a', title: 't', highlights: [{ start: '0' }], createdAt: NOW }, expected: invalid('Record/highlights/0/start must be an integer') },
      { name: 'url not a uri', record: { $type: `${NS}.source.article`, url: 'example dot com', title: 't', createdAt: NOW }, expected: invalid('Record/url must be a uri') },
      { name: 'bad publishedAt', record: { $type: `${NS}.source.article`, url: 'https://example.com/a', title: 't', publishedAt: 'April 1174', createdAt: NOW }, expected: invalid(/^Record\/publishedAt must be an valid atproto datetime/) },
      { name: 'extractedTextRef not an at-uri', record: { $type: `${NS}.source.article`, url: 'https://example.com/a', title: 't', extractedTextRef: 'bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq', createdAt: NOW }, expected: invalid('Record/extractedTextRef must be a valid at-uri') },
    ],
  ),
  'source.lecture': cases(
    'source.lecture',
    { url: 'https://youtube.com/watch?v=x', title: 'Surgebinding 101', createdAt: NOW },
    {
      url: 'https://youtube.com/watch?v=x',
      title: 'Surgebinding 101',
      creator: 'Kaladin',
      timestamps: [
        { t: 0, label: 'intro' },
        { t: 95, label: 'lashings', noteRef: at('note') },
      ],
      createdAt: NOW,
    },
    [
      // the lecture lexicon declares no string length limits: a long title is fine
      { name: 'long title is valid (no limit declared)', record: { $type: `${NS}.source.lecture`, url: 'https://youtube.com/watch?v=x', title: long(20_000), createdAt: NOW }, expected: VALID },
      { name: 'timestamp t of wrong type', record: { $type: `${NS}.source.lecture`, url: 'https://youtube.com/watch?v=x', title: 't', timestamps: [{ t: 1.5, label: 'x' }], createdAt: NOW }, expected: invalid('Record/timestamps/0/t must be an integer') },
      { name: 'timestamp missing label', record: { $type: `${NS}.source.lecture`, url: 'https://youtube.com/watch?v=x', title: 't', timestamps: [{ t: 1 }], createdAt: NOW }, expected: invalid('Record/timestamps/0 must have the property "label"') },
      { name: 'timestamp noteRef not an at-uri', record: { $type: `${NS}.source.lecture`, url: 'https://youtube.com/watch?v=x', title: 't', timestamps: [{ t: 1, label: 'x', noteRef: 'note-1' }], createdAt: NOW }, expected: invalid('Record/timestamps/0/noteRef must be a valid at-uri') },
    ],
  ),
  'thread.comment': cases(
    'thread.comment',
    { subjectRef: at('deck'), body: 'Nice', createdAt: NOW },
    { subjectRef: at('deck'), replyTo: at('thread.comment', '3lfxyz2abcf22'), body: '**Nice** deck', createdAt: NOW },
    [
      { name: 'markdown body accepted as a plain string', record: { $type: `${NS}.thread.comment`, subjectRef: at('card'), body: '> quoted\n\n`code`', createdAt: NOW }, expected: VALID },
      { name: 'body too long', record: { $type: `${NS}.thread.comment`, subjectRef: at('deck'), body: long(5001), createdAt: NOW }, expected: invalid('Record/body must not be longer than 5000 UTF-8 bytes') },
      { name: 'body of wrong type', record: { $type: `${NS}.thread.comment`, subjectRef: at('deck'), body: null, createdAt: NOW }, expected: invalid('Record/body must be a string') },
      { name: 'replyTo not an at-uri', record: { $type: `${NS}.thread.comment`, subjectRef: at('deck'), replyTo: '../parent', body: 'b', createdAt: NOW }, expected: invalid('Record/replyTo must be a valid at-uri') },
    ],
  ),
}

describe('Malfestio lexicons', () => {
  const set = loadMalfestioLexicons()

  it('loads the seven record types', () => {
    expect(set.nsids).toEqual(
      ['card', 'collection', 'deck', 'note', 'source.article', 'source.lecture', 'thread.comment'].map((t) => `${NS}.${t}`),
    )
  })

  it('drops and records the four "markdown" formats', () => {
    expect(set.rewrites.map((r) => `${r.nsid}:${r.path}:${r.format}`)).toEqual([
      `${NS}.card:defs/main/record/properties/front:markdown`,
      `${NS}.card:defs/main/record/properties/back:markdown`,
      `${NS}.note:defs/main/record/properties/body:markdown`,
      `${NS}.thread.comment:defs/main/record/properties/body:markdown`,
    ])
  })

  it('the strict schema parser rejects the unrewritten card lexicon (why the rewrite exists)', () => {
    const raw = JSON.parse(readFileSync(new URL(`../lexicons/org/stormlightlabs/malfestio/card.json`, import.meta.url), 'utf8'))
    expect(() => parseLexiconDoc(raw)).toThrow(/format/)
  })

  it('a collection without a lexicon is refused', () => {
    expect(validateRecord('app.bsky.feed.post', { $type: 'app.bsky.feed.post', text: 'hi' })).toEqual({
      valid: false,
      reason: 'no lexicon for app.bsky.feed.post',
    })
  })

  for (const [type, list] of Object.entries(MALFESTIO)) {
    describe(`${NS}.${type}`, () => {
      for (const c of list) {
        it(c.name, () => {
          expect(validateRecord(`${NS}.${type}`, c.record)).toEqual(c.expected)
        })
      }
    })
  }

  it('accepts a record decoded from DAG-CBOR by @atcute/cbor', () => {
    const record = MALFESTIO.card[1].record
    expect(validateRecord(`${NS}.card`, decode(encode(record)))).toEqual(VALID)
  })
})

// ---------------------------------------------------------------------------------------------
// atproto interop vectors, validated by the same loader against the interop catalog lexicons

const INTEROP = new URL('./fixtures/atproto-interop/lexicon/', import.meta.url)
type Vector = { name: string; rkey: string; data: Record<string, unknown> & { $type: string } }
const readVectors = (file: string): Vector[] => JSON.parse(readFileSync(new URL(file, INTEROP), 'utf8'))

/**
 * @atproto/lexicon 0.7.x checks only that a blob field holds a BlobRef: it does not enforce the
 * schema's `maxSize` or `accept` (see validators/blob.js), so these two invalid vectors validate.
 */
const LIBRARY_DISAGREES = new Set(['blob too large', 'blob wrong type'])

describe('atproto interop: record-data vectors', () => {
  const catalog = loadMalfestioLexicons(new URL('catalog/', INTEROP))

  it('loads the catalog (record, query, procedure, subscription, permission-set)', () => {
    expect(catalog.nsids).toHaveLength(5)
    expect(catalog.rewrites).toEqual([])
  })

  describe('record-data-valid.json', () => {
    readVectors('record-data-valid.json').forEach((v, i) => {
      it(`#${i} ${v.name}`, () => {
        expect(catalog.validate(v.data.$type, v.data)).toEqual(VALID)
      })
    })
  })

  describe('record-data-invalid.json', () => {
    readVectors('record-data-invalid.json').forEach((v, i) => {
      const test = LIBRARY_DISAGREES.has(v.name) ? it.fails : it
      test(`#${i} ${v.name}`, () => {
        const result = catalog.validate(v.data.$type, v.data)
        expect(result.valid).toBe(false)
        if (!result.valid) expect(result.reason).toMatch(/\S/)
      })
    })
  })

  // The three "unknown wrong type" vectors above also lack the required `integer`, so they are
  // refused for that reason alone. With `integer` present, the library accepts bytes and blobs
  // in an `unknown` field (it only checks for "an object"), which the vectors mean to forbid.
  describe('unknown-type vectors with the required field present', () => {
    const withInteger = (name: string) => {
      const v = readVectors('record-data-invalid.json').find((x) => x.name === name)!
      return { ...v.data, integer: 1 }
    }
    it('unknown wrong type (bool)', () => {
      expect(catalog.validate('example.lexicon.record', withInteger('unknown wrong type (bool)'))).toEqual(
        invalid('Record/unknown must be an object'),
      )
    })
    it.fails('unknown wrong type (bytes): library accepts bytes as unknown', () => {
      expect(catalog.validate('example.lexicon.record', withInteger('unknown wrong type (bytes)')).valid).toBe(false)
    })
    it.fails('unknown wrong type (blob): library accepts a blob as unknown', () => {
      expect(catalog.validate('example.lexicon.record', withInteger('unknown wrong type (blob)')).valid).toBe(false)
    })
  })
})

describe('CBOR-decoded values: cid-link, bytes and blob', () => {
  const catalog = loadMalfestioLexicons(new URL('catalog/', INTEROP))
  const cid = CID.parse('bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq')
  const link = () => new CidLinkWrapper(cid.bytes)
  const blob = (mimeType: string, size: number) => ({ $type: 'blob', ref: link(), mimeType, size })
  const roundTrip = (v: Record<string, unknown>) => decode(encode({ $type: 'example.lexicon.record', integer: 1, ...v }))

  it('decoded values are atcute wrappers', () => {
    const rec = roundTrip({ 'cid-link': link(), bytes: new BytesWrapper(new Uint8Array([1])) }) as Record<string, unknown>
    expect(rec['cid-link']).toBeInstanceOf(CidLinkWrapper)
    expect(rec.bytes).toBeInstanceOf(BytesWrapper)
  })

  it('cid-link, bytes and blobs validate', () => {
    const rec = roundTrip({
      'cid-link': link(),
      bytes: new BytesWrapper(new Uint8Array([1, 2, 3])),
      sizeBytes: new BytesWrapper(new Uint8Array(12)),
      blob: blob('text/plain', 12345),
      sizeBlob: blob('text/plain', 8),
      acceptBlob: blob('image/png', 1),
      unknown: { nested: link() },
    })
    expect(catalog.validate('example.lexicon.record', rec)).toEqual(VALID)
  })

  it('bytes limits apply to CBOR bytes', () => {
    const rec = roundTrip({ sizeBytes: new BytesWrapper(new Uint8Array(3)) })
    expect(catalog.validate('example.lexicon.record', rec)).toEqual(invalid('Record/sizeBytes must not be smaller than 10 bytes'))
  })

  it('a string where a cid-link belongs is refused', () => {
    const rec = roundTrip({ 'cid-link': cid.toString() })
    expect(catalog.validate('example.lexicon.record', rec)).toEqual(invalid('Record/cid-link must be a CID'))
  })

  it('a cid-link where bytes belong is refused', () => {
    const rec = roundTrip({ bytes: link() })
    expect(catalog.validate('example.lexicon.record', rec)).toEqual(invalid('Record/bytes must be a byte array'))
  })

  it('a blob without its size is refused', () => {
    const rec = roundTrip({ blob: { $type: 'blob', ref: link(), mimeType: 'text/plain' } })
    expect(catalog.validate('example.lexicon.record', rec)).toEqual(invalid('Record/blob should be a blob ref'))
  })

  it('a blob whose ref is a string is refused', () => {
    const rec = roundTrip({ blob: { $type: 'blob', ref: cid.toString(), mimeType: 'text/plain', size: 1 } })
    expect(catalog.validate('example.lexicon.record', rec)).toEqual(invalid('Record/blob should be a blob ref'))
  })

  it('the input record is not modified', () => {
    const rec = roundTrip({ blob: blob('text/plain', 1) }) as Record<string, any>
    catalog.validate('example.lexicon.record', rec)
    expect(rec.blob.ref).toBeInstanceOf(CidLinkWrapper)
  })
})

describe('loader', () => {
  it('refuses a record validated against a non-record lexicon', () => {
    const catalog = loadMalfestioLexicons(new URL('catalog/', INTEROP))
    expect(catalog.validate('example.lexicon.query', { $type: 'example.lexicon.query' })).toEqual(
      invalid('example.lexicon.query is not a record lexicon (main is query)'),
    )
  })

  it('refuses a folder with a file that is not a valid lexicon, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexicons-'))
    try {
      mkdirSync(join(dir, 'com/example'), { recursive: true })
      const doc = { lexicon: 1, id: 'com.example.bad', defs: { main: { type: 'record', key: 'tid', record: { type: 'object', properties: { n: { type: 'integr' } } } } } }
      writeFileSync(join(dir, 'com/example/bad.json'), JSON.stringify(doc))
      expect(() => loadMalfestioLexicons(dir)).toThrow(/^com\/example\/bad\.json: not a valid lexicon document: defs\/main\/record\/properties\/n\/type: Invalid discriminator/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('loads a folder given as a string path and drops any unknown string format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lexicons-'))
    try {
      const doc = { lexicon: 1, id: 'com.example.fmt', defs: { main: { type: 'record', key: 'tid', record: { type: 'object', properties: { s: { type: 'string', format: 'color', maxLength: 7 } } } } } }
      writeFileSync(join(dir, 'fmt.json'), JSON.stringify(doc))
      const set = loadMalfestioLexicons(dir)
      expect(set.rewrites).toEqual([{ nsid: 'com.example.fmt', file: 'fmt.json', path: 'defs/main/record/properties/s', format: 'color' }])
      expect(set.validate('com.example.fmt', { $type: 'com.example.fmt', s: 'not a colour' })).toEqual(invalid('Record/s must not be longer than 7 UTF-8 bytes'))
      expect(set.validate('com.example.fmt', { $type: 'com.example.fmt', s: '#fff' })).toEqual(VALID)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
