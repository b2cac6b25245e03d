/** Flag parsing shared by the commands: node:util parseArgs, env fallbacks, one-line errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { checkUrl, collectionMatcher, ConfigError, DEFAULTS, isNsid, type MirrorConfig } from '../src/mirror/config.ts'
import { REASONS } from '../src/verify/reasons.ts'

export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

type Options = NonNullable<ParseArgsConfig['options']>

export const COMMON: Options = {
  db: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
}

export const NETWORK: Options = {
  relay: { type: 'string' },
  plc: { type: 'string' },
  collections: { type: 'string' },
  'handle-resolver': { type: 'string' },
  'trust-plc-directory': { type: 'boolean' },
  'identity-max-age': { type: 'string' },
  'verify-threads': { type: 'string' },
}

/** Parses argv strictly: unknown flags and stray positionals are usage errors. */
export function parse(argv: string[], options: Options, positionals = 0) {
  try {
    const out = parseArgs({ args: argv, options, strict: true, allowPositionals: positionals > 0 })
    if (out.positionals.length > positionals) throw new UsageError(`unexpected argument ${out.positionals[positionals]}`)
    return out
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(parseArgsMessage(err as Error & { code?: string }))
  }
}

/** node:util's parseArgs explains itself over several lines; a usage error is one line. */
function parseArgsMessage(err: Error & { code?: string }): string {
  const first = err.message.split('\n')[0]!.trim()
  const flag = /Option '(-{1,2}[\w-]+)/.exec(first)?.[1]
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
    // `--relay --db x` (a value that looks like a flag) or `--relay` at the end: the value is missing
    if (/ambiguous|missing/.test(first)) return `${flag} needs a value`
    return first
  }
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const unknown = /Unknown option '([^']+)'/.exec(first)?.[1]
    if (unknown) return `unknown flag ${unknown} (--help lists the flags of every command)`
  }
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /Unexpected argument '([^']+)'/.exec(first)?.[1]
    if (arg) return `unexpected argument ${arg}`
  }
  return first
}

/** The flag, else the environment variable, else the default. */
export function pick(flag: unknown, env: string, fallback: string): string
export function pick(flag: unknown, env: string, fallback?: string): string | undefined
export function pick(flag: unknown, env: string, fallback?: string): string | undefined {
  if (typeof flag === 'string') return flag
  return process.env[env] ?? fallback
}

/** A boolean flag, else the environment variable (1/true/yes → on, 0/false/no/empty → off). */
export function boolFlag(flag: unknown, env: string): boolean {
  if (typeof flag === 'boolean') return flag
  const v = process.env[env]?.trim().toLowerCase()
  if (v === undefined || v === '' || v === '0' || v === 'false' || v === 'no') return false
  if (v === '1' || v === 'true' || v === 'yes') return true
  throw new UsageError(`${env} must be 1/true/yes or 0/false/no, got ${process.env[env]}`)
}

const DID_RE = /^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%:-]+)$/

/** A did:plc or did:web (the only methods the mirror resolves); else a usage error. */
export function didFlag(value: string, flag = '--did'): string {
  if (!DID_RE.test(value)) throw new UsageError(`${flag} ${value} is not a did:plc or did:web`)
  return value
}

/** An exact collection NSID (a filter, not a scope pattern); else a usage error. */
export function nsidFlag(value: string, flag = '--collection'): string {
  if (!isNsid(value)) throw new UsageError(`${flag} ${value} is not an NSID (e.g. org.stormlightlabs.malfestio.deck)`)
  return value
}

/** A rejection reason code of the closed list (src/verify/reasons.ts); else a usage error. */
export function reasonFlag(value: string): string {
  if (!(REASONS as readonly string[]).includes(value)) throw new UsageError(`--reason ${value} is not a reason code (${REASONS.join(', ')})`)
  return value
}

export function seqFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${name} must be a non-negative integer, got ${value}`)
  return Number(value)
}

/** A thread count (0 = the main thread only) up to 64; else a usage error. */
export function threadsFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) > 64) throw new UsageError(`--verify-threads must be an integer from 0 to 64, got ${value}`)
  return Number(value)
}

/** Hours (decimals allowed, 0 = never) as milliseconds, for --identity-max-age; else a usage error. */
export function hoursFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const h = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
  if (!Number.isFinite(h) || h > 24 * 365) throw new UsageError(`${flag} must be a number of hours from 0 to 8760, got ${value}`)
  return Math.round(h * 3_600_000)
}

/** The config every networked command shares: upstream, PLC, database, scope, handle resolver. */
export function networkConfig(values: Record<string, unknown>, defaultService: string = DEFAULTS.service): MirrorConfig {
  const collections = pick(values.collections, 'MALFESTIO_COLLECTIONS', DEFAULTS.collections.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (!collections.length) throw new UsageError('--collections is empty')
  collectionMatcher(collections) // validates
  const handleResolver = pick(values['handle-resolver'], 'MALFESTIO_HANDLE_RESOLVER')
  return {
    ...DEFAULTS,
    service: checkUrl('--relay', pick(values.relay, 'MALFESTIO_RELAY', defaultService), ['ws:', 'wss:', 'http:', 'https:']),
    plcUrl: checkUrl('--plc', pick(values.plc, 'MALFESTIO_PLC', DEFAULTS.plcUrl), ['http:', 'https:']),
    dbPath: pick(values.db, 'MALFESTIO_DB', DEFAULTS.dbPath),
    collections,
    handleResolverUrl: handleResolver ? checkUrl('--handle-resolver', handleResolver, ['http:', 'https:']) : undefined,
    trustPlcDirectory: boolFlag(values['trust-plc-directory'], 'MALFESTIO_TRUST_PLC_DIRECTORY'),
    identityMaxAgeMs: hoursFlag('--identity-max-age', pick(values['identity-max-age'], 'MALFESTIO_IDENTITY_MAX_AGE')) ?? DEFAULTS.identityMaxAgeMs,
    verifyThreads: threadsFlag(pick(values['verify-threads'], 'MALFESTIO_VERIFY_THREADS')) ?? DEFAULTS.verifyThreads,
  }
}

export { ConfigError }
