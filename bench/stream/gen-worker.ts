/**
 * Worker thread of the stream generator: generates the accounts it is given (the plan is rebuilt
 * here from the parameters, so nothing big crosses threads) and appends their frames and repo CARs
 * to its own files. Reports each account's frame positions and identity to the main thread.
 */
import { openSync, writeSync, closeSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { generateAccount } from './account.ts'
import { makePlan, withIdentities, type Identity, type StreamParams } from './plan.ts'

export interface WorkerInput {
  params: StreamParams
  identities: Identity[]
  accounts: number[]
  framesPath: string
  reposPath: string
}

export interface AccountDone {
  type: 'account'
  index: number
  did: string
  didKey: string
  doc: object
  /** repo CAR at stream start: byte range in reposPath */
  repo: { offset: number; length: number } | null
  /** per frame: slot, byte offset and length in framesPath */
  frames: [number, number, number][]
  ops: number
}

export type WorkerMessage = AccountDone | { type: 'progress'; commits: number } | { type: 'done' }

const input = workerData as WorkerInput
const plan = withIdentities(makePlan(input.params), input.identities)
const framesFd = openSync(input.framesPath, 'w')
const reposFd = openSync(input.reposPath, 'w')
let framesPos = 0
let reposPos = 0
let sinceReport = 0

for (const i of input.accounts) {
  const frames: [number, number, number][] = []
  const out = await generateAccount(plan.accounts[i]!, (slot, frame) => {
    writeSync(framesFd, frame, 0, frame.byteLength, framesPos)
    frames.push([slot, framesPos, frame.byteLength])
    framesPos += frame.byteLength
    if (++sinceReport >= 200) {
      parentPort!.postMessage({ type: 'progress', commits: sinceReport } satisfies WorkerMessage)
      sinceReport = 0
    }
  })
  let repo: AccountDone['repo'] = null
  if (out.repoCar) {
    writeSync(reposFd, out.repoCar, 0, out.repoCar.byteLength, reposPos)
    repo = { offset: reposPos, length: out.repoCar.byteLength }
    reposPos += out.repoCar.byteLength
  }
  parentPort!.postMessage({ type: 'account', index: i, did: out.did, didKey: out.didKey, doc: out.doc, repo, frames, ops: out.ops } satisfies WorkerMessage)
}
parentPort!.postMessage({ type: 'progress', commits: sinceReport } satisfies WorkerMessage)
closeSync(framesFd)
closeSync(reposFd)
parentPort!.postMessage({ type: 'done' } satisfies WorkerMessage)
