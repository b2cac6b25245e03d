/**
 * Cost of verifying did:plc operation logs, per DID.
 *
 *   npm exec -- node bench/plc-log.ts            (synthetic logs + a dev-env PLC)
 *
 * 1. CPU: verifyPlcAuditLog on logs of 1, 2, 4 and 8 operations (K-256 keys, as the PDSes of the
 *    network use; two rotation keys, the PDS's second, so every op costs a failed and a good signature
 *    check like real accounts with a recovery key), against @did-plc/lib's validateOperationLog on
 *    the same operations (its log-without-audit form).
 * 2. End to end on a dev-env PLC (in-process, localhost): resolving N fresh DIDs with the directory's
 *    document only vs document + audit log + verification (wall time: includes the in-process PLC
 *    server's own work, and whatever else the machine is doing — the load average is printed).
 */
import os from 'node:os'
import * as plc from '@did-plc/lib'
import { Secp256k1Keypair } from '@atproto/crypto'
import { cidForOp, verifyPlcAuditLog } from '../src/verify/plc-log.ts'
import { createIdentityResolver } from '../src/verify/identity.ts'
import { createAccounts, startDevnet } from '../tests/helpers/devnet.ts'

type Entry = { did: string; operation: unknown; cid: string; nullified: boolean; createdAt: string }

async function syntheticLog(ops: number): Promise<{ did: string; log: Entry[] }> {
  const recovery = await Secp256k1Keypair.create()
  const pds = await Secp256k1Keypair.create()
  let signing = await Secp256k1Keypair.create()
  const { op: genesis, did } = await plc.createOp({
    signingKey: signing.did(),
    handle: 'bench.example.com',
    pds: 'https://pds.example.com',
    rotationKeys: [recovery.did(), pds.did()],
    signer: pds,
  })
  const list: unknown[] = [genesis]
  for (let i = 1; i < ops; i++) {
    const last = list.at(-1) as plc.Operation
    if (i % 2) list.push(await plc.updateHandleOp(last, pds, `bench${i}.example.com`))
    else {
      signing = await Secp256k1Keypair.create()
      list.push(await plc.updateAtprotoKeyOp(last, pds, signing.did()))
    }
  }
  const t0 = Date.parse('2024-01-01T00:00:00.000Z')
  const log = await Promise.all(
    list.map(async (operation, i) => ({ did, operation, cid: await cidForOp(operation), nullified: false, createdAt: new Date(t0 + i * 60_000).toISOString() })),
  )
  return { did, log }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Median CPU time (user + system, ms) of each call: less distorted than wall time on a busy machine. */
async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t = process.cpuUsage()
    await fn(i)
    const d = process.cpuUsage(t)
    times.push((d.user + d.system) / 1000)
  }
  return median(times)
}

async function cpu(): Promise<void> {
  console.log('verifyPlcAuditLog, CPU time per DID (median of 40 distinct logs; code warm, keys cold):')
  console.log('ops  ours (ms)  @did-plc/lib validateOperationLog (ms)')
  for (const ops of [1, 2, 4, 8]) {
    const logs = await Promise.all(Array.from({ length: 40 }, () => syntheticLog(ops)))
    // warm the code paths (not the key caches: every log has its own keys)
    const warm = await syntheticLog(ops)
    await verifyPlcAuditLog(warm.did, warm.log)
    await plc.validateOperationLog(warm.did, warm.log.map((e) => e.operation) as never)
    const ours = await timeEach(logs.length, (i) => verifyPlcAuditLog(logs[i]!.did, logs[i]!.log))
    const lib = await timeEach(logs.length, (i) => plc.validateOperationLog(logs[i]!.did, logs[i]!.log.map((e) => e.operation) as never))
    console.log(`${String(ops).padStart(3)}  ${ours.toFixed(2).padStart(9)}  ${lib.toFixed(2).padStart(9)}`)
  }
}

async function endToEnd(): Promise<void> {
  const net = await startDevnet()
  try {
    const n = 30
    const accounts = await createAccounts(net, n, 'bench')
    const dids = accounts.map((a) => a.did)
    for (const verifyPlcLog of [false, true, false, true]) {
      const r = createIdentityResolver({ plcUrl: net.plcUrl, verifyPlcLog })
      const t = performance.now()
      for (const did of dids) await r.resolve(did)
      const ms = (performance.now() - t) / n
      const s = r.stats()
      console.log(
        `${verifyPlcLog ? 'document + audit log, verified' : 'document only (trust directory)'}: ${ms.toFixed(2)} ms per DID` +
          (verifyPlcLog ? ` (of which verification ${(s.logVerifyMs / s.logsVerified).toFixed(2)} ms)` : ''),
      )
    }
  } finally {
    await net.close()
  }
}

console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores\n`)
await cpu()
console.log('\nend to end, dev-env PLC on localhost (genesis-only logs, 30 DIDs, sequential; 2 rounds each):')
await endToEnd()
