/**
 * A verification thread: runs `verifyCommit` (the same function the main thread would run) on the
 * commits the pool sends it, and posts back the VerifiedCommit or the refusal with its reason.
 * The blocks travel as transferred buffers both ways, so nothing is copied twice.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { verifyCommit } from '../verify/commit.ts'
import { VerificationError } from '../verify/reasons.ts'
import { commitScope } from './config.ts'
import { packCommit, type VerifyJob, type VerifyReply, type VerifyWorkerData } from './verify-pool.ts'

const port = parentPort
if (!port) throw new Error('verify-worker.ts runs as a worker thread of verify-pool.ts')
const scope = commitScope((workerData as VerifyWorkerData).collections)

port.on('message', (job: VerifyJob) => {
  verifyCommit(job.evt, job.key, scope).then(
    (verified) => {
      const packed = packCommit(verified)
      if (packed) port.postMessage({ id: job.id, ok: true, packed } satisfies VerifyReply, [packed.buffer])
      else port.postMessage({ id: job.id, ok: true, verified } satisfies VerifyReply)
    },
    (err: unknown) => {
      const reply: VerifyReply =
        err instanceof VerificationError
          ? { id: job.id, ok: false, reason: err.reason, message: err.message }
          : { id: job.id, ok: false, reason: null, message: (err as Error)?.stack ?? String(err) }
      port.postMessage(reply)
    },
  )
})
