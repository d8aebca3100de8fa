/** Summing a tf.profile() kernel list for the profiling benches. */
import type * as tf from '@tensorflow/tfjs-core';

type KernelInfo = Awaited<ReturnType<typeof tf.profile>>['kernels'][number];

/**
 * Kernel time and calls grouped by `keyOf` (the kernel name by default), slowest first, with the
 * milliseconds rounded to `decimals`.
 */
export function kernelTotals(kernels: readonly KernelInfo[], keyOf: (k: KernelInfo) => string | undefined = (k) => k.name, decimals = 0): Array<{ key: string; ms: number; calls: number }> {
  const totals = new Map<string, { ms: number; calls: number }>();
  for (const k of kernels) {
    const key = keyOf(k);
    if (key === undefined) continue;
    const e = totals.get(key) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.calls++;
    totals.set(key, e);
  }
  const scale = 10 ** decimals;
  return [...totals].map(([key, e]) => ({ key, ms: Math.round(e.ms * scale) / scale, calls: e.calls })).sort((a, b) => b.ms - a.ms);
}
