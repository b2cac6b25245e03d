/**
 * Scenario: the peer, `@atproto/sync`'s `Firehose` with authentication (the default: signature and
 * MST proof of every op via @atproto/repo's verifyProofs), on the same relay and DID documents.
 * Its resolver gets an in-memory DID cache, so it fetches each document once, as we do.
 */
import { IdResolver, MemoryCache } from '@atproto/identity'
import { Firehose } from '@atproto/sync'
import { childMain } from '../lib/child.ts'
import { maxRssMb, rssMb, sampleRss } from '../lib/rss.ts'

export interface PeerInput {
  service: string
  plcUrl: string
  lastSeq: number
  /** give up after this long without reaching lastSeq */
  timeoutSec: number
}

export interface PeerResult {
  elapsedSec: number
  cpuSec: number
  /** commits whose ops came out verified (distinct seqs handed to handleEvent) */
  commits: number
  events: number
  errors: number
  errorSamples: string[]
  peakRssMb: number
  maxRssMb: number
  completed: boolean
}

childMain<PeerInput, PeerResult>(async (input, progress) => {
  const rss = sampleRss()
  // a generous timeout: on a busy machine a slow local answer must not count against the peer
  const idResolver = new IdResolver({ plcUrl: input.plcUrl, fetch: globalThis.fetch, didCache: new MemoryCache(), timeout: 30_000 })
  let commits = 0
  let events = 0
  let errors = 0
  let lastSeq = 0
  const errorSamples: string[] = []
  let done!: () => void
  const finished = new Promise<void>((r) => (done = r))
  const seen = (seq: number) => {
    // no runner: events come in seq order, one commit's ops together
    if (seq > lastSeq) {
      commits++
      lastSeq = seq
    }
    if (seq >= input.lastSeq) done()
  }
  const firehose = new Firehose({
    service: input.service,
    idResolver,
    handleEvent: async (evt) => {
      events++
      if ('seq' in evt) seen(evt.seq)
    },
    onError: (err) => {
      errors++
      if (errorSamples.length < 5) errorSamples.push(`${err.message}: ${(err.cause as Error)?.message ?? ''}`)
      const seq = (err as { event?: { seq?: number } }).event?.seq
      if (typeof seq === 'number' && seq >= input.lastSeq) done()
    },
  })
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const ticker = setInterval(() => {
    const s = (performance.now() - t0) / 1000
    progress(`@atproto/sync Firehose: ${lastSeq}/${input.lastSeq} frames, ${(commits / s).toFixed(0)} commits/s, ${rssMb().toFixed(0)} MB`)
  }, 1000)
  void firehose.start()
  let completed = true
  await Promise.race([finished, new Promise<void>((r) => setTimeout(() => ((completed = false), r()), input.timeoutSec * 1000))])
  const elapsedSec = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(c0)
  clearInterval(ticker)
  const peakRssMb = rss.peakMb()
  rss.stop()
  await Promise.race([firehose.destroy(), new Promise((r) => setTimeout(r, 2000))])
  return { elapsedSec, cpuSec: (cpu.user + cpu.system) / 1e6, commits, events, errors, errorSamples, peakRssMb, maxRssMb: maxRssMb(), completed }
})
