// did:plc operation logs: real logs from a dev-env PLC (handle changes, key rotations, a recovery,
// a tombstone) verify and give the key the directory serves; doctored logs are refused; the 72 h
// recovery window is judged on the operations' own times, not today's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as plc from '@did-plc/lib'
import { CID } from 'multiformats/cid'
import { P256Keypair, Secp256k1Keypair, parseDidKey } from '@atproto/crypto'
import { ECDH } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'
import { getHandle, getPds } from '@atproto/identity'
import { cidForOp, PlcLogError, verifyPlcAuditLog, type PlcLogErrorCode } from '../src/verify/plc-log.ts'
import { distinctKeys, epochAtIdentityEvent, epochsInForce, KEY_TIME_SKEW_MS } from '../src/verify/key-history.ts'
import { createIdentityResolver, IdentityError } from '../src/verify/identity.ts'
import { startPlcProxy } from './helpers/plc-proxy.ts'
import {
  createAccounts, plcDocument, plcSigningKey, rotateSigningKey, startDevnet, tombstoneDid, updateHandle, xrpcProcedure,
  type Devnet, type TestAccount,
} from './helpers/devnet.ts'

type Entry = { did: string; operation: any; cid: string; nullified: boolean; createdAt: string }

const auditLog = async (net: Devnet, did: string): Promise<Entry[]> => {
  const res = await fetch(`${net.plcUrl}/${encodeURIComponent(did)}/log/audit`)
  if (!res.ok) throw new Error(`audit log ${did}: ${res.status}`)
  return res.json()
}

const refusal = async (did: string, log: unknown): Promise<PlcLogErrorCode | 'ok'> => {
  try {
    await verifyPlcAuditLog(did, log)
    return 'ok'
  } catch (err) {
    if (err instanceof PlcLogError) return err.code
    throw err
  }
}

const clone = <T>(x: T): T => structuredClone(x)

describe('PLC audit logs from a dev-env directory', () => {
  let net: Devnet
  let alice: TestAccount
  let bob: TestAccount

  beforeAll(async () => {
    net = await startDevnet()
    ;[alice, bob] = (await createAccounts(net, 2, 'plclog')) as [TestAccount, TestAccount]
  })
  afterAll(async () => {
    await net?.close()
  })

  it('handle changes and two key rotations verify; the derived key, handle and PDS equal the served ones', async () => {
    const k0 = await plcSigningKey(net, alice.did)
    await updateHandle(net, alice.did, 'plclog-renamed.test')
    const k1 = await rotateSigningKey(net, alice.did)
    await updateHandle(net, alice.did, 'plclog-again.test')
    const k2 = await rotateSigningKey(net, alice.did)
    const log = await auditLog(net, alice.did)
    expect(log.length).toBe(5)

    const v = await verifyPlcAuditLog(alice.did, log)
    const doc = await plcDocument(net, alice.did)
    expect(v.signingKey).toBe(await plcSigningKey(net, alice.did))
    expect(v.signingKey).toBe(k2)
    expect(v.handle).toBe(getHandle(doc))
    expect(v.handle).toBe('plclog-again.test')
    expect(v.pds).toBe(getPds(doc))
    expect(v.tombstone).toBeNull()
    expect(v.nullified).toEqual([])
    expect(v.lastOp).toEqual({ cid: log[4]!.cid, createdAt: log[4]!.createdAt })
    // three keys, each begun by the op that introduced it and ended by the next rotation
    expect(v.keys.map((k) => k.signingKey)).toEqual([k0, k1, k2])
    expect(v.keys.map((k) => k.op.cid)).toEqual([log[0]!.cid, log[2]!.cid, log[4]!.cid])
    expect(v.keys.map((k) => k.endedBy?.cid ?? null)).toEqual([log[2]!.cid, log[4]!.cid, null])
    expect(v.keys.map((k) => k.index)).toEqual([0, 1, 2])
  })

  it('refuses a log with a broken signature, a wrong genesis hash, a reordered or altered operation', async () => {
    await updateHandle(net, bob.did, 'plclog-bob2.test')
    await rotateSigningKey(net, bob.did)
    const log = await auditLog(net, bob.did)
    expect(log.length).toBe(3)
    expect(await refusal(bob.did, log)).toBe('ok')

    // one signature byte changed (the op's CID is recomputed, so only the signature is wrong)
    const badSig = clone(log)
    const sig = Buffer.from(badSig[2]!.operation.sig, 'base64url')
    sig[10]! ^= 1
    badSig[2]!.operation.sig = sig.toString('base64url')
    badSig[2]!.cid = await cidForOp(badSig[2]!.operation)
    expect(await refusal(bob.did, badSig)).toBe('bad-signature')

    // a genuine log presented for another DID: its genesis does not hash to that DID
    expect(await refusal(bob.did, (await auditLog(net, alice.did)).map((e) => ({ ...e, did: bob.did })))).toBe('genesis-hash')
    // the genesis operation altered (it no longer hashes to the DID, nor verifies)
    const badGenesis = clone(log)
    badGenesis[0]!.operation.alsoKnownAs = ['at://someone-else.test']
    badGenesis[0]!.cid = await cidForOp(badGenesis[0]!.operation)
    expect(['genesis-hash', 'bad-signature']).toContain(await refusal(bob.did, badGenesis))

    // reordered: the rotation before the handle change it builds on
    const reordered = [log[0]!, log[2]!, log[1]!].map((e, i) => ({ ...e, createdAt: log[i]!.createdAt }))
    expect(await refusal(bob.did, reordered)).toBe('misordered')
    // reordered by time: createdAt going backwards
    const backwards = clone(log)
    backwards[2]!.createdAt = '2001-01-01T00:00:00.000Z'
    expect(await refusal(bob.did, backwards)).toBe('misordered')
    // an operation dropped from the middle: the next one's prev points nowhere
    expect(await refusal(bob.did, [log[0]!, log[2]!])).toBe('misordered')

    // an operation changed after signing (a different key), CID recomputed → the signature no longer covers it
    const swapped = clone(log)
    swapped[2]!.operation.verificationMethods.atproto = (await Secp256k1Keypair.create()).did()
    swapped[2]!.cid = await cidForOp(swapped[2]!.operation)
    expect(await refusal(bob.did, swapped)).toBe('bad-signature')
    // the directory's CID for an op is not its hash
    const wrongCid = clone(log)
    wrongCid[1]!.cid = log[2]!.cid
    expect(await refusal(bob.did, wrongCid)).toBe('cid-mismatch')
    // a nullified flag that the log does not prove
    const flagged = clone(log)
    flagged[1]!.nullified = true
    expect(await refusal(bob.did, flagged)).toBe('nullified-mismatch')
    // not a log at all
    expect(await refusal(bob.did, [])).toBe('bad-structure')
    expect(await refusal(bob.did, { ops: log })).toBe('bad-structure')
    expect(await refusal(bob.did, [{ ...log[0]!, operation: { type: 'nope' } }])).toBe('bad-structure')
  })

  it('a recovery: a stronger rotation key nullifies a rotation within 72 h; the key history leaves it out', async () => {
    const recovery = await Secp256k1Keypair.create({ exportable: true })
    const acc = await xrpcProcedure(net, 'com.atproto.server.createAccount', {
      handle: 'plcrecover.test',
      email: 'plcrecover@example.test',
      password: 'plcrecover-password',
      recoveryKey: recovery.did(),
    })
    const did = acc.did as string
    const k0 = await plcSigningKey(net, did)
    // the PDS (second rotation key) rotates the signing key — say, after the PDS was compromised
    const hijacked = await rotateSigningKey(net, did)
    const before = await auditLog(net, did)
    expect(before.length).toBe(2)
    expect(before[0]!.operation.rotationKeys[0]).toBe(recovery.did())

    // the user's recovery key forks from the genesis op, nullifying the rotation
    const client = new plc.Client(net.plcUrl)
    const recoveryOp = await plc.createUpdateOp(before[0]!.operation, recovery, (n) => ({ ...n, alsoKnownAs: ['at://plcrecovered.test'] }))
    await client.sendOperation(did, recoveryOp)

    const log = await auditLog(net, did)
    expect(log.map((e) => e.nullified)).toEqual([false, true, false])
    const v = await verifyPlcAuditLog(did, log)
    expect(v.nullified).toEqual([log[1]!.cid])
    expect(v.signingKey).toBe(k0)
    expect(v.signingKey).not.toBe(hijacked)
    expect(v.signingKey).toBe(await plcSigningKey(net, did))
    expect(v.handle).toBe('plcrecovered.test')
    expect(v.keys).toEqual([{ index: 0, signingKey: k0, op: { cid: log[0]!.cid, createdAt: log[0]!.createdAt }, endedBy: null }])
    // the directory hiding the nullification is caught
    expect(await refusal(did, log.map((e) => ({ ...e, nullified: false })))).toBe('nullified-mismatch')
  })

  it('the resolver takes key, handle and PDS from the verified log, keeps it past the TTL, and reports a lying document', async () => {
    const proxy = await startPlcProxy(net.plcUrl)
    try {
      let t = 1_000_000
      const r = createIdentityResolver({ plcUrl: proxy.url, verifyPlcLog: true, cacheTtlMs: 1_000, now: () => t })
      const id = await r.resolve(bob.did)
      expect(id).toMatchObject({ source: 'plc-log', signingKey: await plcSigningKey(net, bob.did), handle: 'plclog-bob2.test', pds: net.pdsUrl })
      expect(id.mismatch).toBeUndefined()
      expect(id.log!.keys.length).toBe(2)
      t += 60_000 // far past the document TTL: a verified log stays until something asks again
      expect(await r.resolve(bob.did)).toBe(id)
      expect(r.stats()).toMatchObject({ fetches: 1, logsVerified: 1, cacheHits: 1 })

      const attacker = await Secp256k1Keypair.create()
      proxy.lieAboutKey(bob.did, attacker.did())
      const hits = proxy.hits.length
      const lied = await r.resolve(bob.did, { force: true })
      expect(lied.signingKey).toBe(id.signingKey) // the log's key, not the document's
      expect(lied.mismatch).toMatchObject({ fields: ['signingKey'], served: { signingKey: attacker.did() } })
      expect(lied.mismatch!.message).toContain(attacker.did())
      expect(proxy.hits.length - hits).toBe(4) // log + document, asked twice before calling it a mismatch
      // the same directory, trusted: the attacker's key is the answer
      const trusting = createIdentityResolver({ plcUrl: proxy.url })
      expect(await trusting.resolve(bob.did)).toMatchObject({ source: 'plc-directory', signingKey: attacker.did() })

      // a doctored log: a definite refusal, not a transient failure
      proxy.reset(bob.did)
      proxy.editLog(bob.did, (log) => log.slice(1))
      const err = await r.resolve(bob.did, { force: true }).catch((e) => e)
      expect(err).toBeInstanceOf(IdentityError)
      expect(err).toMatchObject({ code: 'plc-log-invalid', transient: false })
    } finally {
      await proxy.close()
    }
  })

  it('a tombstone ends the identity', async () => {
    const [gone] = await createAccounts(net, 1, 'plcgone')
    const k0 = await plcSigningKey(net, gone!.did)
    await tombstoneDid(net, gone!.did)
    const log = await auditLog(net, gone!.did)
    const v = await verifyPlcAuditLog(gone!.did, log)
    expect(v.tombstone).toEqual({ cid: log.at(-1)!.cid, createdAt: log.at(-1)!.createdAt })
    expect(v.signingKey).toBeNull()
    expect(v.keys).toEqual([{ index: 0, signingKey: k0, op: { cid: log[0]!.cid, createdAt: log[0]!.createdAt }, endedBy: v.tombstone }])
    // and nothing may follow it
    const after = await plc.updateHandleOp(log[0]!.operation, await Secp256k1Keypair.create(), 'x.test')
    const extended = [...log, { ...log[0]!, operation: { ...after, prev: log.at(-1)!.cid }, createdAt: new Date().toISOString() }]
    extended.at(-1)!.cid = await cidForOp(extended.at(-1)!.operation)
    expect(await refusal(gone!.did, extended)).toBe('misordered')
  })
})

describe('the recovery window is judged on the operations’ own times', () => {
  // A log built with @did-plc/lib's own operation helpers, dated in 2023: re-verifying it today must
  // still accept a recovery made 25 h after the op it nullifies, and refuse one made 73 h after.
  const build = async (recoveryAfterHours: number, signRecoveryWith: 'recovery' | 'pds' = 'recovery') => {
    const recovery = await Secp256k1Keypair.create()
    const pdsKey = await Secp256k1Keypair.create()
    const signing = await Secp256k1Keypair.create()
    const { op: genesis, did } = await plc.createOp({
      signingKey: signing.did(),
      handle: 'old.example.com',
      pds: 'https://pds.example.com',
      rotationKeys: [recovery.did(), pdsKey.did()],
      signer: pdsKey,
    })
    const attacker = await Secp256k1Keypair.create()
    const hijack = await plc.updateAtprotoKeyOp(genesis, pdsKey, attacker.did())
    const recover = await plc.updateHandleOp(genesis, signRecoveryWith === 'recovery' ? recovery : pdsKey, 'old.example.com')
    const t0 = Date.parse('2023-03-01T00:00:00.000Z')
    const at = (h: number) => new Date(t0 + h * 3_600_000).toISOString()
    const entry = async (operation: unknown, createdAt: string, nullified: boolean) => ({ did, operation, cid: await cidForOp(operation), nullified, createdAt })
    const log = [
      await entry(genesis, at(0), false),
      await entry(hijack, at(1), true),
      await entry(recover, at(1 + recoveryAfterHours), false),
    ]
    return { did, log, signing, attacker, genesis, hijack, recover }
  }

  it('accepts a recovery 25 h after the nullified op, years later — where @did-plc/lib (Date.now) refuses it', async () => {
    const { did, log, signing } = await build(25)
    const v = await verifyPlcAuditLog(did, log)
    expect(v.nullified).toEqual([log[1]!.cid])
    expect(v.signingKey).toBe(signing.did())
    expect(v.keys.map((k) => k.signingKey)).toEqual([signing.did()])
    // the library's own next-op check measures the window from now, so it refuses this old recovery
    const indexed = log.slice(0, 2).map((e) => ({ ...e, cid: CID.parse(e.cid), createdAt: new Date(e.createdAt), nullified: false }))
    await expect(plc.assureValidNextOp(did, indexed as never, log[2]!.operation as plc.CompatibleOpOrTombstone)).rejects.toBeInstanceOf(plc.LateRecoveryError)
  })

  it('refuses a recovery 73 h after the nullified op, and one signed by a key no stronger than the disputed signer', async () => {
    const late = await build(73)
    expect(await refusal(late.did, late.log)).toBe('late-recovery')
    const weak = await build(2, 'pds')
    expect(await refusal(weak.did, weak.log)).toBe('bad-signature')
    // without the nullified flag, a valid hijack followed by nothing is simply the current state
    const plain = await build(2)
    const v = await verifyPlcAuditLog(plain.did, [{ ...plain.log[0]!, nullified: false }, { ...plain.log[1]!, nullified: false }])
    expect(v.signingKey).toBe(plain.attacker.did())
  })
})

describe('the keys of an operation are checked as @did-plc/lib checks them', () => {
  // verifyPlcAuditLog answers `plc.assureValidOp` with node:crypto first and leaves what that does not
  // accept to the library: every case here is also put to the library itself, the oracle
  const k256 = (bytes: Uint8Array) => `did:key:${base58btc.encode(Uint8Array.of(0xe7, 0x01, ...bytes))}`
  // an x coordinate with no point on secp256k1 (about half of them have none)
  const offCurve = (() => {
    for (let x = 5; ; x++) {
      const bytes = Uint8Array.of(0x02, ...new Uint8Array(31), x)
      try {
        ECDH.convertKey(bytes, 'secp256k1')
      } catch {
        return k256(bytes)
      }
    }
  })()

  const genesisWith = async (over: { signingKey?: string; rotationKeys?: (k: string) => string[] }) => {
    const signer = await Secp256k1Keypair.create()
    const { op, did } = await plc.createOp({
      signingKey: over.signingKey ?? (await Secp256k1Keypair.create()).did(),
      handle: 'keys.example.com',
      pds: 'https://pds.example.com',
      rotationKeys: over.rotationKeys ? over.rotationKeys(signer.did()) : [signer.did()],
      signer,
    })
    return { did, signer, op, log: [{ did, operation: op, cid: await cidForOp(op), nullified: false, createdAt: '2024-01-01T00:00:00.000Z' }] }
  }
  const libraryVerdict = async (op: unknown) =>
    plc.assureValidOp(plc.normalizeOp(op as never)).then(
      () => 'ok',
      (err: Error) => err.constructor.name,
    )

  it('accepts K-256 and P-256 keys, as the library does', async () => {
    const p256 = await P256Keypair.create()
    const g = await genesisWith({ signingKey: p256.did(), rotationKeys: (k) => [k, p256.did()] })
    expect(await libraryVerdict(g.op)).toBe('ok')
    const v = await verifyPlcAuditLog(g.did, g.log)
    expect(v.signingKey).toBe(p256.did())
    expect(v.rotationKeys).toEqual([g.signer.did(), p256.did()])
  })

  it('refuses a key off its curve, an uncompressed key and six rotation keys, with the library’s errors', async () => {
    const key = await Secp256k1Keypair.create()
    const uncompressed = k256(ECDH.convertKey(parseDidKey(key.did()).keyBytes, 'secp256k1', undefined, undefined, 'uncompressed') as Buffer)
    const cases: [string, Parameters<typeof genesisWith>[0], PlcLogErrorCode, string][] = [
      ['signing key off the curve', { signingKey: offCurve }, 'unsupported-key', 'UnsupportedKeyError'],
      ['uncompressed signing key', { signingKey: uncompressed }, 'unsupported-key', 'UnsupportedKeyError'],
      ['rotation key off the curve', { rotationKeys: (k) => [k, offCurve] }, 'unsupported-key', 'UnsupportedKeyError'],
      ['six rotation keys', { rotationKeys: (k) => [k, ...Array.from({ length: 5 }, () => key.did())] }, 'bad-operation', 'ImproperOperationError'],
    ]
    for (const [what, over, code, libraryError] of cases) {
      const g = await genesisWith(over)
      expect(await libraryVerdict(g.op), what).toBe(libraryError)
      expect(await refusal(g.did, g.log), what).toBe(code)
    }
  })

  it('refuses a later operation that brings in an unusable key', async () => {
    const g = await genesisWith({})
    const next = await plc.updateAtprotoKeyOp(g.op, g.signer, offCurve)
    expect(await libraryVerdict(next)).toBe('UnsupportedKeyError')
    const log = [...g.log, { did: g.did, operation: next, cid: await cidForOp(next), nullified: false, createdAt: '2024-01-02T00:00:00.000Z' }]
    expect(await refusal(g.did, log)).toBe('unsupported-key')
    // the same operation with a good key is accepted: the refusal is the key's
    const good = await plc.updateAtprotoKeyOp(g.op, g.signer, (await Secp256k1Keypair.create()).did())
    const fine = [...g.log, { did: g.did, operation: good, cid: await cidForOp(good), nullified: false, createdAt: '2024-01-02T00:00:00.000Z' }]
    expect(await refusal(g.did, fine)).toBe('ok')
  })
})

describe('key history: which keys an event may use', () => {
  const epoch = (index: number, key: string, from: string, to: string | null) => ({
    index,
    signingKey: key,
    op: { cid: `op${index}`, createdAt: from },
    endedBy: to ? { cid: `op${index + 1}`, createdAt: to } : null,
  })
  const keys = [
    epoch(0, 'k0', '2024-01-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z'),
    epoch(1, 'k1', '2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z'),
    epoch(2, 'k2', '2024-03-01T00:00:00.000Z', null),
  ]
  const names = (t: string, floor = 0) => epochsInForce(keys, floor, t).map((e) => e.signingKey)

  it('allows the key of the event’s period (with skew at the edges), at or above the floor', () => {
    expect(names('2024-01-15T00:00:00.000Z')).toEqual(['k0'])
    expect(names('2024-02-01T00:01:00.000Z')).toEqual(['k1', 'k0']) // both within the skew of the rotation
    expect(names('2024-02-01T00:01:00.000Z', 1)).toEqual(['k1'])
    expect(names(new Date(Date.parse('2024-02-01T00:00:00.000Z') + KEY_TIME_SKEW_MS + 1).toISOString())).toEqual(['k1'])
    expect(names('2024-01-15T00:00:00.000Z', 1)).toEqual([]) // the stream passed the rotation: k0 is gone
    expect(names('2030-01-01T00:00:00.000Z')).toEqual(['k2'])
    expect(names('2023-01-01T00:00:00.000Z')).toEqual([]) // before the DID existed
    expect(names('not a time')).toEqual(['k2'])
    expect(names('not a time', 3)).toEqual([])
  })

  it('an #identity event moves the floor to the key its time has reached; keys repeat at most once', () => {
    expect(epochAtIdentityEvent(keys, '2024-02-01T00:00:01.000Z')?.signingKey).toBe('k1')
    expect(epochAtIdentityEvent(keys, '2024-02-01T00:00:00.000Z')?.signingKey).toBe('k1')
    // an op dated after the event (even by a second) is not what the event announced
    expect(epochAtIdentityEvent(keys, '2024-01-31T23:59:59.000Z')?.signingKey).toBe('k0')
    expect(epochAtIdentityEvent(keys, '2024-01-31T23:00:00.000Z')?.signingKey).toBe('k0')
    expect(epochAtIdentityEvent(keys, '2023-01-01T00:00:00.000Z')).toBeUndefined()
    const back = [...keys.slice(0, 2), epoch(2, 'k0', '2024-03-01T00:00:00.000Z', null)]
    expect(distinctKeys(back.slice().reverse()).map((e) => e.index)).toEqual([2, 1])
  })
})
