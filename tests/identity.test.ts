import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Secp256k1Keypair } from '@atproto/crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  IdentityError,
  createIdentityResolver,
  didWebUrl,
  parseDidDocument,
  pdsHandleResolver,
  signingDidKey,
  type IdentityErrorCode,
} from '../src/verify/identity.ts'
import {
  createAccounts,
  plcDocument,
  plcSigningKey,
  rotateSigningKey,
  startDevnet,
  tombstoneDid,
  updateHandle,
  type Devnet,
  type TestAccount,
} from './helpers/devnet.ts'

const codeOf = async (p: Promise<unknown>): Promise<IdentityErrorCode | 'ok'> => {
  try {
    await p
    return 'ok'
  } catch (err) {
    if (err instanceof IdentityError) return err.code
    throw err
  }
}

/** A tiny local HTTP server whose answer the test sets per path. */
type Reply = { status: number; body?: string; delayMs?: number; headers?: Record<string, string> }
const startStub = async () => {
  const routes = new Map<string, Reply>()
  const hits: string[] = []
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '')
    const r = routes.get(req.url ?? '') ?? { status: 404, body: 'not found' }
    const send = () => {
      res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers })
      res.end(r.body ?? '')
    }
    if (r.delayMs) setTimeout(send, r.delayMs)
    else send()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    routes,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const closedPort = async (): Promise<number> => {
  const s = http.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

const webDoc = (did: string, key: string | undefined, extra: Record<string, unknown> = {}) => ({
  '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
  id: did,
  alsoKnownAs: ['at://web-user.example.com'],
  verificationMethod: key
    ? [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: key.slice('did:key:'.length) }]
    : [],
  service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.example.com' }],
  ...extra,
})

describe('identity resolver against dev-env', () => {
  let net: Devnet
  let alice: TestAccount
  let bob: TestAccount

  beforeAll(async () => {
    net = await startDevnet()
    ;[alice, bob] = (await createAccounts(net, 2, 'ident')) as [TestAccount, TestAccount]
  })
  afterAll(async () => {
    await net?.close()
  })

  const newResolver = (o: Partial<Parameters<typeof createIdentityResolver>[0]> = {}) =>
    createIdentityResolver({ plcUrl: net.plcUrl, resolveHandle: pdsHandleResolver(net.pdsUrl), ...o })

  it('resolves a created account: key, pds, handle; counts cache hits', async () => {
    const r = newResolver()
    const id = await r.resolve(alice.did)
    expect(id.did).toBe(alice.did)
    expect(id.signingKey).toBe(await plcSigningKey(net, alice.did))
    expect(id.signingKey).toMatch(/^did:key:zQ3s/)
    expect(id.pds).toBe(net.pdsUrl)
    expect(id.handle).toBe(alice.handle)
    expect(id.doc).toEqual(await plcDocument(net, alice.did))
    expect(r.stats()).toMatchObject({ calls: 1, cacheHits: 0, fetches: 1, size: 1 })

    const again = await r.resolve(alice.did)
    expect(again).toBe(id)
    expect(r.stats()).toMatchObject({ calls: 2, cacheHits: 1, fetches: 1 })
    expect(r.peek(alice.did)).toBe(id)

    const forced = await r.resolve(alice.did, { force: true })
    expect(forced).not.toBe(id)
    expect(forced.signingKey).toBe(id.signingKey)
    expect(r.stats()).toMatchObject({ calls: 3, cacheHits: 1, fetches: 2 })
  })

  it('sees a rotated key only when forced (until the TTL runs out)', async () => {
    const [carol] = await createAccounts(net, 1, 'rotid')
    const r = newResolver()
    const before = await r.resolve(carol!.did)
    const newKey = await rotateSigningKey(net, carol!.did)
    expect((await r.resolve(carol!.did)).signingKey).toBe(before.signingKey)
    expect((await r.resolve(carol!.did, { force: true })).signingKey).toBe(newKey)
    // and the cache now holds the new key
    expect((await r.resolve(carol!.did)).signingKey).toBe(newKey)
  })

  it('expires entries after cacheTtlMs and evicts the least recently used past cacheMax', async () => {
    let t = 1_000_000
    const r = newResolver({ cacheTtlMs: 1_000, cacheMax: 2, now: () => t })
    await r.resolve(alice.did)
    t += 999
    await r.resolve(alice.did)
    expect(r.stats()).toMatchObject({ fetches: 1, cacheHits: 1 })
    t += 1
    await r.resolve(alice.did)
    expect(r.stats()).toMatchObject({ fetches: 2, cacheHits: 1 })

    const [x] = await createAccounts(net, 1, 'lru')
    await r.resolve(bob.did) // cache: alice, bob
    await r.resolve(alice.did) // hit → order: bob, alice
    await r.resolve(x!.did) // evicts bob
    expect(r.stats()).toMatchObject({ size: 2, evictions: 1 })
    expect(r.peek(bob.did)).toBeUndefined()
    expect(r.peek(alice.did)).toBeDefined()
    expect(r.peek(x!.did)).toBeDefined()
  })

  it('joins concurrent resolves of one DID into one fetch', async () => {
    const r = newResolver()
    const all = await Promise.all([r.resolve(bob.did), r.resolve(bob.did), r.resolve(bob.did)])
    expect(new Set(all).size).toBe(1)
    expect(r.stats()).toMatchObject({ calls: 3, fetches: 1, joined: 2 })
  })

  it('fetches at most maxConcurrentFetches DIDs at once; the others wait their turn', async () => {
    const peakWith = async (limit: number) => {
      // DIDs with a request open (one DID's document and log may be fetched side by side)
      const open = new Map<string, number>()
      let peak = 0
      const counting: typeof fetch = async (input, init) => {
        const did = /did:plc:[a-z2-7]+/.exec(decodeURIComponent(String(input)))![0]
        open.set(did, (open.get(did) ?? 0) + 1)
        peak = Math.max(peak, open.size)
        try {
          return await fetch(input, init)
        } finally {
          if (open.get(did) === 1) open.delete(did)
          else open.set(did, open.get(did)! - 1)
        }
      }
      const r = newResolver({ fetch: counting, verifyPlcLog: true, maxConcurrentFetches: limit })
      const ids = await Promise.all([alice.did, bob.did, alice.did].map((did) => r.resolve(did)))
      expect(ids.map((id) => id.did)).toEqual([alice.did, bob.did, alice.did])
      return peak
    }
    expect(await peakWith(1)).toBe(1)
    expect(await peakWith(4)).toBe(2)
  })

  it('unknown did:plc → did-not-found; tombstoned → did-tombstoned', async () => {
    const r = newResolver()
    expect(await codeOf(r.resolve('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'))).toBe('did-not-found')
    expect(await codeOf(r.resolve('did:plc:NOT-VALID'))).toBe('did-not-found')
    const [gone] = await createAccounts(net, 1, 'gone')
    await r.resolve(gone!.did)
    await tombstoneDid(net, gone!.did)
    expect(await codeOf(r.resolve(gone!.did, { force: true }))).toBe('did-tombstoned')
    expect(r.peek(gone!.did)).toBeUndefined() // a definite answer evicts the old entry
    expect(r.stats().errors).toMatchObject({ 'did-not-found': 2, 'did-tombstoned': 1 })
  })

  it('unsupported methods and did:web paths are refused', async () => {
    const r = newResolver()
    const key = (await Secp256k1Keypair.create()).did()
    expect(await codeOf(r.resolve(key))).toBe('unsupported-did-method')
    expect(await codeOf(r.resolve('did:example:123'))).toBe('unsupported-did-method')
    expect(await codeOf(r.resolve('did:web:example.com:user:alice'))).toBe('unsupported-did-method')
    expect(await codeOf(r.resolve('did:web:example.com%3A8443'))).toBe('unsupported-did-method')
    expect(await codeOf(r.resolve('not-a-did'))).toBe('did-not-found')
  })

  it('verifies handles through the PDS lookup', async () => {
    const r = newResolver()
    expect(await r.verifyHandle(alice.did, alice.handle)).toBe(true)
    expect(await r.verifyHandle(alice.did, alice.handle.toUpperCase())).toBe(true)
    expect(await r.verifyHandle(alice.did, bob.handle)).toBe(false)
    expect(await r.verifyHandle(alice.did, 'nobody-here.test')).toBe(false)
    expect(await r.verifyHandle(alice.did, 'not a handle')).toBe(false)
    expect(await r.resolveHandle(bob.handle)).toBe(bob.did)

    const [dave] = await createAccounts(net, 1, 'dave')
    await updateHandle(net, dave!.did, 'dave-renamed.test')
    expect(await r.verifyHandle(dave!.did, dave!.handle)).toBe(false)
    expect(await r.verifyHandle(dave!.did, 'dave-renamed.test')).toBe(true)
    expect((await r.resolve(dave!.did, { force: true })).handle).toBe('dave-renamed.test')
  })

  it('without an injected lookup, .test handles are unverified', async () => {
    const r = createIdentityResolver({ plcUrl: net.plcUrl, timeoutMs: 1_000 })
    expect(await r.verifyHandle(alice.did, alice.handle)).toBe(false)
  })

  it('a failing handle lookup counts as unverified', async () => {
    const r = newResolver({
      resolveHandle: async () => {
        throw new Error('boom')
      },
    })
    expect(await r.verifyHandle(alice.did, alice.handle)).toBe(false)
  })
})

describe('identity resolver: transient failures', () => {
  it('PLC down (connection refused) → resolver-unavailable', async () => {
    const port = await closedPort()
    const r = createIdentityResolver({ plcUrl: `http://127.0.0.1:${port}`, timeoutMs: 2_000 })
    const err = await r.resolve('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa').catch((e) => e)
    expect(err).toBeInstanceOf(IdentityError)
    expect(err.code).toBe('resolver-unavailable')
    expect(err.transient).toBe(true)
  })

  it('5xx, 429 and timeouts → resolver-unavailable; 410 → tombstoned; 404 → not found', async () => {
    const stub = await startStub()
    try {
      const did = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
      const path = `/${encodeURIComponent(did)}`
      const r = createIdentityResolver({ plcUrl: stub.url, timeoutMs: 200 })
      stub.routes.set(path, { status: 503, body: 'busy' })
      expect(await codeOf(r.resolve(did))).toBe('resolver-unavailable')
      stub.routes.set(path, { status: 429, body: 'slow down' })
      expect(await codeOf(r.resolve(did))).toBe('resolver-unavailable')
      stub.routes.set(path, { status: 200, body: '{}', delayMs: 1_000 })
      const t0 = Date.now()
      expect(await codeOf(r.resolve(did))).toBe('resolver-unavailable')
      expect(Date.now() - t0).toBeLessThan(900)
      stub.routes.set(path, { status: 410, body: '{"message":"DID not available"}' })
      expect(await codeOf(r.resolve(did))).toBe('did-tombstoned')
      stub.routes.set(path, { status: 404, body: '{"message":"DID not registered"}' })
      expect(await codeOf(r.resolve(did))).toBe('did-not-found')
      stub.routes.set(path, { status: 200, body: 'not json' })
      expect(await codeOf(r.resolve(did))).toBe('bad-did-document')
      stub.routes.set(path, { status: 302, body: '', headers: { location: 'http://127.0.0.1:1/' } })
      expect(await codeOf(r.resolve(did))).toBe('did-not-found')
      stub.routes.set(path, { status: 200, body: JSON.stringify({ id: did, pad: 'x'.repeat(300_000) }) })
      expect(await codeOf(r.resolve(did))).toBe('bad-did-document')
      expect(r.stats().errors['resolver-unavailable']).toBe(3)
    } finally {
      await stub.close()
    }
  })

  it('a transient failure keeps the cached identity; a forced retry can succeed later', async () => {
    const stub = await startStub()
    try {
      const kp = await Secp256k1Keypair.create()
      const did = 'did:plc:cccccccccccccccccccccccc'
      const path = `/${encodeURIComponent(did)}`
      const r = createIdentityResolver({ plcUrl: stub.url, timeoutMs: 500 })
      stub.routes.set(path, { status: 200, body: JSON.stringify(webDoc(did, kp.did())) })
      const first = await r.resolve(did)
      stub.routes.set(path, { status: 500 })
      expect(await codeOf(r.resolve(did, { force: true }))).toBe('resolver-unavailable')
      expect(r.peek(did)).toBe(first)
      expect(await r.resolve(did)).toBe(first) // callers may keep using the known key meanwhile
      stub.routes.set(path, { status: 200, body: JSON.stringify(webDoc(did, kp.did())) })
      const later = await r.resolve(did, { force: true })
      expect(later).not.toBe(first)
      expect(later.signingKey).toBe(kp.did())
    } finally {
      await stub.close()
    }
  })
})

describe('did:web', () => {
  let stub: Awaited<ReturnType<typeof startStub>>
  beforeAll(async () => {
    stub = await startStub()
  })
  afterAll(async () => {
    await stub?.close()
  })

  it('builds the well-known URL (http only for localhost)', () => {
    expect(didWebUrl('did:web:example.com').href).toBe('https://example.com/.well-known/did.json')
    expect(didWebUrl('did:web:localhost%3A1234').href).toBe('http://localhost:1234/.well-known/did.json')
    expect(didWebUrl('did:web:127.0.0.1%3A1234').href).toBe('http://127.0.0.1:1234/.well-known/did.json')
  })

  it('resolves a did:web served by a local http server', async () => {
    const kp = await Secp256k1Keypair.create()
    for (const host of ['localhost', '127.0.0.1']) {
      const did = `did:web:${host}%3A${stub.port}`
      stub.routes.set('/.well-known/did.json', { status: 200, body: JSON.stringify(webDoc(did, kp.did())) })
      const r = createIdentityResolver({ plcUrl: 'http://127.0.0.1:1' })
      const id = await r.resolve(did)
      expect(id).toMatchObject({
        did,
        signingKey: kp.did(),
        handle: 'web-user.example.com',
        pds: 'https://pds.example.com',
      })
    }
  })

  it('404 → did-not-found; bad documents are told apart', async () => {
    const did = `did:web:localhost%3A${stub.port}`
    const r = createIdentityResolver({ plcUrl: 'http://127.0.0.1:1' })
    stub.routes.delete('/.well-known/did.json')
    expect(await codeOf(r.resolve(did))).toBe('did-not-found')
    stub.routes.set('/.well-known/did.json', { status: 200, body: JSON.stringify(webDoc(did, undefined)) })
    expect(await codeOf(r.resolve(did))).toBe('no-signing-key')
    const kp = await Secp256k1Keypair.create()
    stub.routes.set('/.well-known/did.json', {
      status: 200,
      body: JSON.stringify(webDoc('did:web:someone.else', kp.did())),
    })
    expect(await codeOf(r.resolve(did))).toBe('bad-did-document')
    stub.routes.set('/.well-known/did.json', { status: 200, body: JSON.stringify({ id: 42 }) })
    expect(await codeOf(r.resolve(did))).toBe('bad-did-document')
    stub.routes.set('/.well-known/did.json', { status: 502 })
    expect(await codeOf(r.resolve(did))).toBe('resolver-unavailable')
  })
})

describe('parseDidDocument', () => {
  it('reads P-256 multikeys (legacy K-256 PLC keys are covered against dev-env above)', async () => {
    const { P256Keypair } = await import('@atproto/crypto')
    const p = await P256Keypair.create()
    const did = 'did:web:example.com'
    expect(parseDidDocument(did, webDoc(did, p.did())).signingKey).toBe(p.did())
  })

  it('reads the #atproto key of every method type as @atproto/identity does (its getKey is the oracle)', async () => {
    const { getKey } = await import('@atproto/identity')
    const { P256Keypair, bytesToMultibase } = await import('@atproto/crypto')
    const did = 'did:web:example.com'
    const docWith = (type: string, publicKeyMultibase: string) =>
      webDoc(did, undefined, { verificationMethod: [{ id: `${did}#atproto`, type, controller: did, publicKeyMultibase }] })
    const k = await Secp256k1Keypair.create()
    const p = await P256Keypair.create()
    const docs = [
      webDoc(did, k.did()),
      webDoc(did, p.did()),
      docWith('EcdsaSecp256k1VerificationKey2019', bytesToMultibase(k.publicKeyBytes(), 'base58btc')),
      docWith('EcdsaSecp256r1VerificationKey2019', bytesToMultibase(p.publicKeyBytes(), 'base58btc')),
      docWith('JsonWebKey2020', k.did().slice('did:key:'.length)),
      webDoc(did, undefined),
    ]
    const expected = [k.did(), p.did(), k.did(), p.did(), undefined, undefined]
    for (const [i, doc] of docs.entries()) {
      expect(signingDidKey(doc as never), `doc ${i}`).toBe(getKey(doc as never))
      expect(signingDidKey(doc as never), `doc ${i}`).toBe(expected[i])
    }
    expect(parseDidDocument(did, docs[2]).signingKey).toBe(k.did())
    expect(parseDidDocument(did, docs[3]).signingKey).toBe(p.did())
    expect(() => parseDidDocument(did, docs[4])).toThrow(/no usable #atproto verification method/)
  })

  it('refuses an unreadable key', () => {
    const did = 'did:web:example.com'
    const doc = webDoc(did, 'did:key:zNOTAKEY')
    expect(() => parseDidDocument(did, doc)).toThrow(IdentityError)
  })
})
