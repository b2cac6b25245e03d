/**
 * A long dev-env stream for the fault suite: many accounts writing Malfestio records in parallel
 * (one writer per account: the PDS serialises a repo's writes anyway), as single createRecord /
 * putRecord / deleteRecord calls and as applyWrites batches, plus records of other collections.
 * Every call is one commit, so the stream has exactly `accounts × commitsPerAccount` commits after
 * the account creations.
 */
import { authHeaders, createAccounts, MALFESTIO_NSIDS, OTHER_COLLECTION, sampleMalfestio, xrpcProcedure, type Devnet } from './devnet.ts'

export interface BigStream {
  dids: string[]
  /** commits written (not counting account creation) */
  commits: number
  /** Malfestio ops in those commits */
  malfestioOps: number
}

/** Deterministic pseudo-random numbers, so every run writes the same mix. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export async function writeBigStream(net: Devnet, opts: { accounts: number; commitsPerAccount: number; prefix?: string }): Promise<BigStream> {
  const accounts = await createAccounts(net, opts.accounts, opts.prefix ?? 'big')
  let malfestioOps = 0
  await Promise.all(
    accounts.map(async ({ did }, a) => {
      const rand = rng(a + 1)
      const live: { collection: string; rkey: string }[] = []
      const headers = authHeaders(net, did)
      const call = (method: string, body: unknown) => xrpcProcedure(net, method, body, headers)
      const value = (collection: string, n: number): Record<string, unknown> => {
        switch (collection) {
          case MALFESTIO_NSIDS.deck:
            return sampleMalfestio.deck({ title: `Deck ${a}.${n}` })
          case MALFESTIO_NSIDS.card:
            return sampleMalfestio.card({ deckRef: `at://${did}/${MALFESTIO_NSIDS.deck}/3jzfcijpj2z2a`, front: `Q ${a}.${n}`, back: `A ${n}` })
          case MALFESTIO_NSIDS.note:
            return sampleMalfestio.note({ title: `Note ${a}.${n}` })
          default:
            return sampleMalfestio.comment({ subjectRef: `at://${did}/${MALFESTIO_NSIDS.deck}/3jzfcijpj2z2a`, body: `Comment ${a}.${n}` })
        }
      }
      const kinds = [MALFESTIO_NSIDS.deck, MALFESTIO_NSIDS.card, MALFESTIO_NSIDS.card, MALFESTIO_NSIDS.note, MALFESTIO_NSIDS.comment]
      const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!
      for (let n = 0; n < opts.commitsPerAccount; n++) {
        const r = rand()
        if (r < 0.08) {
          await call('com.atproto.repo.createRecord', { repo: did, collection: OTHER_COLLECTION, record: { $type: OTHER_COLLECTION, n } })
        } else if (r < 0.2 && live.length > 2) {
          const target = live[Math.floor(rand() * live.length)]!
          await call('com.atproto.repo.putRecord', { repo: did, ...target, record: value(target.collection, n) })
          malfestioOps++
        } else if (r < 0.28 && live.length > 2) {
          const [target] = live.splice(Math.floor(rand() * live.length), 1)
          await call('com.atproto.repo.deleteRecord', { repo: did, ...target! })
          malfestioOps++
        } else if (r < 0.5) {
          // several records in one commit
          const writes = Array.from({ length: 2 + Math.floor(rand() * 4) }, (_, k) => {
            const collection = pick(kinds)
            return { $type: 'com.atproto.repo.applyWrites#create', collection, value: { $type: collection, ...value(collection, n * 10 + k) } }
          })
          const res = await call('com.atproto.repo.applyWrites', { repo: did, writes })
          for (const w of res.results as { uri: string }[]) {
            const [, , , collection, rkey] = w.uri.split('/')
            live.push({ collection: collection!, rkey: rkey! })
          }
          malfestioOps += writes.length
        } else {
          const collection = pick(kinds)
          const res = await call('com.atproto.repo.createRecord', { repo: did, collection, record: { $type: collection, ...value(collection, n) } })
          live.push({ collection, rkey: (res.uri as string).split('/').pop()! })
          malfestioOps++
        }
      }
    }),
  )
  return { dids: accounts.map((a) => a.did), commits: opts.accounts * opts.commitsPerAccount, malfestioOps }
}
