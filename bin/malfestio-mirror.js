#!/usr/bin/env node
// The CLI entry: Node >= 22.18 runs the TypeScript sources directly (type stripping).
import { main } from './cli.ts'

// `… | head` closes the pipe early: that is the reader's choice, not an error worth a stack trace
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

process.exitCode = await main(process.argv.slice(2))
