/**
 * Wall-clock time per phase of DP-SGD steps, for profiling (`bench/dp-sgd.ts` reports it): where
 * a private step spends the time a non-private step does not. Timing never changes what a step
 * computes; the clock is a parameter (`now`), as everywhere in the training loop.
 */

/** The phases of one DP-SGD step, in the order they run. */
export const DP_SGD_PHASES = ['sample', 'forwardBackward', 'perExampleGrads', 'clipGridSum', 'noise', 'optimizer'] as const;

/** One phase of a DP-SGD step. */
export type DpSgdPhase = (typeof DP_SGD_PHASES)[number];

/**
 * Milliseconds per phase summed over the steps (and passes) timed: `sample` Poisson sampling and
 * the per-unit cap; `forwardBackward` the batched forward and backward pass recording each LoRA
 * layer's input and output gradient; `perExampleGrads` the per-example LoRA gradients formed and
 * downloaded; `clipGridSum` norms, certified clip factors and the exact integer sum on the noise
 * grid; `noise` the exact discrete Gaussian added to that sum; `optimizer` the AdamW update.
 */
export type DpSgdPhaseTimes = Record<DpSgdPhase, number>;

/** A profiler: where the times go and the clock that measures them. */
export interface DpSgdProfiler {
  times: DpSgdPhaseTimes;
  now: () => number;
}

/** Zero for every phase. */
export function emptyPhaseTimes(): DpSgdPhaseTimes {
  return Object.fromEntries(DP_SGD_PHASES.map((p) => [p, 0])) as DpSgdPhaseTimes;
}

/** Runs `fn`, adding its duration to `phase` when a profiler is given. */
export function timed<T>(profiler: DpSgdProfiler | undefined, phase: DpSgdPhase, fn: () => T): T {
  if (!profiler) return fn();
  const t0 = profiler.now();
  try {
    return fn();
  } finally {
    profiler.times[phase] += profiler.now() - t0;
  }
}

/** `timed` for an asynchronous `fn`: its duration up to the settling of its promise. */
export async function timedAsync<T>(profiler: DpSgdProfiler | undefined, phase: DpSgdPhase, fn: () => Promise<T>): Promise<T> {
  if (!profiler) return fn();
  const t0 = profiler.now();
  try {
    return await fn();
  } finally {
    profiler.times[phase] += profiler.now() - t0;
  }
}
