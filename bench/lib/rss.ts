import { readFileSync } from 'node:fs'

/** Peak resident memory of this process, sampled (the OS's maxRSS cannot be reset between passes). */
export interface RssSampler {
  /** highest RSS seen since the last reset, in MB */
  peakMb(): number
  reset(): void
  stop(): void
}

export const rssMb = (): number => process.memoryUsage.rss() / 1024 / 1024

export function sampleRss(everyMs = 100): RssSampler {
  let peak = rssMb()
  const timer = setInterval(() => {
    const now = rssMb()
    if (now > peak) peak = now
  }, everyMs)
  timer.unref()
  return {
    peakMb: () => Math.max(peak, rssMb()),
    reset: () => {
      peak = rssMb()
    },
    stop: () => clearInterval(timer),
  }
}

/** The OS's peak RSS of this process over its whole life, in MB. */
export const maxRssMb = (): number => process.resourceUsage().maxRSS / 1024

/** Resident memory by kind (Linux): anonymous (heap, malloc) vs file-backed (code, mapped files). */
export function rssKinds(): { anonMb: number; fileMb: number; shmemMb: number } | null {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024, shmemMb: kb('RssShmem') / 1024 }
  } catch {
    return null
  }
}

/** Bytes and write() calls this process has issued (Linux /proc/self/io: all files, sockets included), or null. */
export function ioWrites(): { bytes: number; calls: number } | null {
  try {
    const io = readFileSync('/proc/self/io', 'utf8')
    const n = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? NaN)
    return { bytes: n('wchar'), calls: n('syscw') }
  } catch {
    return null
  }
}
