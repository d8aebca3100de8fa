/**
 * Peak memory of this process over a run, sampled on a timer (process.memoryUsage): what a
 * simulation reports as its own footprint. A sample is taken at start and at each `peak()` too,
 * so a run shorter than the period still reports something.
 */
export interface MemorySampler {
  /** Peak resident set size and V8 heap used so far, in bytes. */
  peak(): { peakRssBytes: number; peakHeapUsedBytes: number };
  stop(): void;
}

/** Starts sampling every `periodMs` (the timer does not keep the process alive). */
export function startMemorySampler(periodMs: number): MemorySampler {
  let rss = 0;
  let heap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  };
  sample();
  const timer = setInterval(sample, periodMs);
  timer.unref();
  return {
    peak: () => {
      sample();
      return { peakRssBytes: rss, peakHeapUsedBytes: heap };
    },
    stop: () => clearInterval(timer),
  };
}
