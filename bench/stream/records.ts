/**
 * Record bodies for the bench stream: network-like Bluesky records (likes, follows, reposts, posts,
 * blocks, profiles) and valid Malfestio records, in sizes like the real ones.
 */
import { CID } from 'multiformats/cid'
import { create as digest } from 'multiformats/hashes/digest'
import type { LexMap } from '@atproto/lex-data'
import type { Rng } from './plan.ts'

export const MALFESTIO = {
  deck: 'org.stormlightlabs.malfestio.deck',
  card: 'org.stormlightlabs.malfestio.card',
  note: 'org.stormlightlabs.malfestio.note',
} as const

export const BSKY = {
  like: 'app.bsky.feed.like',
  follow: 'app.bsky.graph.follow',
  repost: 'app.bsky.feed.repost',
  post: 'app.bsky.feed.post',
  block: 'app.bsky.graph.block',
  profile: 'app.bsky.actor.profile',
} as const

export type Kind = keyof typeof MALFESTIO | keyof typeof BSKY
export const COLLECTION: Record<Kind, string> = { ...MALFESTIO, ...BSKY }

/** What an account creates, by weight (Jetstream-like: likes dominate), plus Malfestio study material. */
export const CREATE_WEIGHTS: Record<Exclude<Kind, 'profile'>, number> = {
  like: 42,
  follow: 12,
  repost: 12,
  post: 15,
  block: 1,
  deck: 2,
  card: 10,
  note: 6,
}

const WORDS = (
  'the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but ' +
  'not what all were we when your can said there use an each which she do how their if will up other about out many ' +
  'then them these so some her would make like him into time has look two more write go see number no way could people ' +
  'my than first water been call who oil its now find long down day did get come made may part spaced repetition ' +
  'flashcard deck lecture article cloze memory recall review interval study atproto mirror firehose relay signature'
).split(' ')

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

export function words(rng: Rng, lo: number, hi: number): string {
  const n = rng.int(lo, hi)
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(rng.pick(WORDS))
  return out.join(' ')
}

export function randomDid(rng: Rng): string {
  let id = ''
  for (let i = 0; i < 24; i++) id += B32[rng.int(0, 31)]
  return `did:plc:${id}`
}

/** A CID string of the right shape for a record someone else wrote (strong refs). */
export function randomCid(rng: Rng): string {
  return CID.createV1(0x71, digest(0x12, rng.bytes(32))).toString()
}

export interface RecordContext {
  did: string
  rng: Rng
  createdAt: string
  /** a TID for a foreign record uri */
  tid: () => string
  /** rkey of one of this account's decks, if any */
  deckRkey?: string
}

export function makeRecord(kind: Kind, ctx: RecordContext): LexMap {
  const { rng, createdAt } = ctx
  const $type = COLLECTION[kind]
  const strongRef = () => ({ uri: `at://${randomDid(rng)}/app.bsky.feed.post/${ctx.tid()}`, cid: randomCid(rng) })
  switch (kind) {
    case 'like':
    case 'repost':
      return { $type, subject: strongRef(), createdAt }
    case 'follow':
    case 'block':
      return { $type, subject: randomDid(rng), createdAt }
    case 'post': {
      const post: LexMap = { $type, text: words(rng, 3, 45), langs: ['en'], createdAt }
      if (rng.next() < 0.3) {
        const parent = strongRef()
        post.reply = { root: rng.next() < 0.5 ? parent : strongRef(), parent }
      }
      return post
    }
    case 'profile':
      return { $type, displayName: words(rng, 1, 3), description: words(rng, 5, 30), createdAt }
    case 'deck':
      return { $type, title: words(rng, 2, 6), description: words(rng, 5, 40), tags: [rng.pick(WORDS), rng.pick(WORDS)], createdAt }
    case 'card':
      return {
        $type,
        deckRef: `at://${ctx.did}/${MALFESTIO.deck}/${ctx.deckRkey ?? ctx.tid()}`,
        front: words(rng, 3, 25),
        back: words(rng, 3, 60),
        cardType: rng.next() < 0.8 ? 'basic' : 'cloze',
        createdAt,
      }
    case 'note':
      return { $type, title: words(rng, 2, 8), body: words(rng, 20, 200), tags: [rng.pick(WORDS)], visibility: 'public', createdAt }
  }
}
