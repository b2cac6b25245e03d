#!/usr/bin/env node
// The CLI entry: Node >= 22.18 runs the TypeScript sources directly (type stripping).
import { main } from './cli.ts'

process.exitCode = await main(process.argv.slice(2))
