/**
 * A process and its descendants, sampled from /proc (Linux): the summed resident set size and
 * each process's CPU time (user + system). A process's CPU time is kept at its last sample, so a
 * worker that exits between samples loses at most one sampling interval.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** `/proc/PID/stat` after the command name: field 3 (state) is index 0. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process exited
  }
}

/** `pid` and every descendant. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const ppid = Number(statFields(Number(d))?.[1]);
    if (Number.isInteger(ppid)) children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** VmRSS of one process, bytes (0 once it exited). */
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** VmRSS (bytes) of `pid` and every descendant. */
export function treeRss(pid: number): number {
  return processTree(pid).reduce((n, p) => n + rssOf(p), 0);
}

/** Samples a process tree every `intervalMs`: peak summed RSS and CPU seconds per process. */
export class TreeSampler {
  peakRssBytes = 0;
  private readonly cpu = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly root: number,
    intervalMs = 250,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    let rss = 0;
    for (const p of processTree(this.root)) {
      rss += rssOf(p);
      const f = statFields(p);
      if (f) this.cpu.set(p, (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND);
    }
    this.peakRssBytes = Math.max(this.peakRssBytes, rss);
  }

  /** Stops sampling; CPU seconds of the root process and of each descendant seen. */
  stop(): { rootCpuSeconds: number; descendantsCpuSeconds: number[] } {
    clearInterval(this.timer);
    const others = [...this.cpu].filter(([p]) => p !== this.root).map(([, s]) => s);
    return { rootCpuSeconds: this.cpu.get(this.root) ?? 0, descendantsCpuSeconds: others };
  }
}
