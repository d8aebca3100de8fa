/** Learning-rate schedules. */

/**
 * Linear warmup then cosine decay (Loshchilov & Hutter 2017, SGDR without restarts), as
 * transformers' `get_cosine_schedule_with_warmup`: lr * (step + 1) / warmup during warmup (so the first step is not wasted), then
 * lr * (minRatio + (1 - minRatio) * 0.5 * (1 + cos(pi * progress))). `step` counts from 0.
 */
export function warmupCosine(step: number, totalSteps: number, peakLr: number, warmupSteps = 0, minRatio = 0): number {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, received ${step}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new RangeError(`totalSteps must be a positive integer, received ${totalSteps}`);
  if (step < warmupSteps) return (peakLr * (step + 1)) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return peakLr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
