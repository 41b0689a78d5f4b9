// This process's own peak resident set size. getrusage()'s ru_maxrss (process.resourceUsage()
// .maxRSS) survives exec: a child forked from a 1 GiB parent reports at least the parent's size
// at fork time. /proc/self/status's VmHWM is the high-water mark of the address space exec gave
// this process, so it counts only what this program touched. Elsewhere ru_maxrss is all there is.
import fs from 'node:fs';

/** Peak RSS of this process alone, in bytes. */
export function ownPeakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux, or /proc not mounted
  }
  return process.resourceUsage().maxRSS * 1024;
}
