import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { DEFAULT_GRID_FRACTION, gaussianOnGrid } from './samplers.js';

/**
 * The privatisation half of one DP-SGD step (Abadi et al. 2016, "Deep Learning with Differential
 * Privacy", Algorithm 1), for trainers that can hand over per-example gradients (cheap for LoRA:
 * r (dIn + dOut) values per layer and example) or per-example squared norms plus a way to sum
 * scaled gradients. Examples must have been drawn by Poisson sampling with rate q; the result is
 * divided by the *expected* batch size q N, as Opacus does, so the batch size itself leaks nothing.
 */

/** Options of privatizeGradients. */
export interface DpSgdStepOptions {
  clipNorm: number;
  noiseMultiplier: number;
  /** q * N: the expected Poisson batch size (not the realised one). */
  expectedBatchSize: number;
  rng: RandomBytes;
  /** Grid step of the exact Gaussian (default std * 2^-16). */
  gridStep?: number;
}

/**
 * sum_i g_i * min(1, C / ||g_i||) + N(0, (z C)^2 I), divided by the expected batch size. The noise is
 * the exact discrete Gaussian on a fine grid (`gaussianOnGrid`), added after rounding the clipped
 * sum to the grid. An empty batch (possible under Poisson sampling) still gets its noise.
 * `layout` gives the tensor names and shapes when the batch is empty.
 */
export function privatizeGradients(perExample: readonly NamedTensors[], layout: NamedTensors, opts: DpSgdStepOptions): { gradient: NamedTensors; clippedFraction: number } {
  const { clipNorm, noiseMultiplier, expectedBatchSize, rng } = opts;
  if (!(clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${clipNorm}`);
  if (!(noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${noiseMultiplier}`);
  if (!(expectedBatchSize > 0)) throw new RangeError(`expectedBatchSize must be > 0, received ${expectedBatchSize}`);
  const sums = new Map<string, Float64Array>();
  for (const [name, t] of layout) sums.set(name, new Float64Array(t.data.length));
  let clipped = 0;
  perExample.forEach((g, i) => {
    let sq = 0;
    for (const [name, t] of g) {
      if (!sums.has(name)) throw new RangeError(`example ${i} has tensor "${name}" that the layout lacks`);
      for (const v of t.data) sq += v * v;
    }
    if (!Number.isFinite(sq)) throw new RangeError(`example ${i} has a non-finite gradient`);
    const norm = Math.sqrt(sq);
    const s = norm > clipNorm ? clipNorm / norm : 1;
    if (s < 1) clipped++;
    for (const [name, t] of g) {
      const acc = sums.get(name)!;
      if (acc.length !== t.data.length) throw new RangeError(`example ${i} tensor "${name}" has ${t.data.length} values, layout has ${acc.length}`);
      for (let k = 0; k < acc.length; k++) acc[k] = acc[k]! + t.data[k]! * s;
    }
  });
  const std = noiseMultiplier * clipNorm;
  const step = opts.gridStep ?? (std > 0 ? std * DEFAULT_GRID_FRACTION : 1);
  const gradient: NamedTensors = new Map();
  for (const [name, t] of layout) {
    const acc = sums.get(name)!;
    const noise = std > 0 ? gaussianOnGrid(std, acc.length, rng, step) : new Float64Array(acc.length);
    const data = new Float32Array(acc.length);
    for (let k = 0; k < acc.length; k++) {
      const base = std > 0 ? Math.round(acc[k]! / step) * step : acc[k]!;
      data[k] = (base + noise[k]!) / expectedBatchSize;
    }
    gradient.set(name, { shape: [...t.shape], data });
  }
  return { gradient, clippedFraction: perExample.length ? clipped / perExample.length : 0 };
}

/**
 * Poisson sampling of example indices with rate q (each example independently), the sampling
 * the sampled-Gaussian accountant assumes. Coins compare 48 random bits with floor(q 2^48), so
 * the realised rate never exceeds q and accounting with q stays an upper bound.
 */
export function poissonSample(population: number, samplingRate: number, rng: RandomBytes): number[] {
  if (!Number.isInteger(population) || population < 0) throw new RangeError(`population must be an integer >= 0, received ${population}`);
  if (!(samplingRate >= 0 && samplingRate <= 1)) throw new RangeError(`samplingRate must be in [0, 1], received ${samplingRate}`);
  const threshold = Math.floor(samplingRate * 2 ** 48);
  const bytes = rng(population * 6);
  const out: number[] = [];
  for (let i = 0; i < population; i++) {
    let x = 0;
    for (let b = 0; b < 6; b++) x = x * 256 + bytes[i * 6 + b]!;
    if (x < threshold || samplingRate === 1) out.push(i);
  }
  return out;
}
