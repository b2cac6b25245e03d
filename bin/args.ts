/** Flag parsing shared by the commands: node:util parseArgs, env fallbacks, one-line errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { checkUrl, collectionMatcher, ConfigError, DEFAULTS, type MirrorConfig } from '../src/mirror/config.ts'

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
}

/** Parses argv strictly: unknown flags and stray positionals are usage errors. */
export function parse(argv: string[], options: Options, positionals = 0) {
  try {
    const out = parseArgs({ args: argv, options, strict: true, allowPositionals: positionals > 0 })
    if (out.positionals.length > positionals) throw new UsageError(`unexpected argument ${out.positionals[positionals]}`)
    return out
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError((err as Error).message)
  }
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

export function seqFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${name} must be a non-negative integer, got ${value}`)
  return Number(value)
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
  }
}

export { ConfigError }
