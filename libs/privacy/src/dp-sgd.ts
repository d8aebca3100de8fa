import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { certifiedClipFactor, GridClippedSum, privatizeGridCounts } from './grid-clipped-sum.js';
import { DEFAULT_GRID_FRACTION } from './samplers.js';

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
 * sum_i c_i g_i + N(0, (z C)^2 I), divided by the expected batch size, with c_i the certified
 * clip factor (`certifiedClipFactor`: ||c_i g_i|| <= C holds in floating point, not only in real
 * numbers). With noise, each clipped gradient is rounded to the grid h Z (h = z C 2^-16 by
 * default) before summing, so the sum is exact in integers and one example moves it by at most
 * C + sqrt(d) h / 2 (`GridClippedSum`), within the accounted `gridSensitivity`; the noise is the
 * exact discrete Gaussian on that grid, added to the integer sum. An empty batch (possible under
 * Poisson sampling) still gets its noise. `layout` gives the tensor names, order and shapes;
 * a tensor an example lacks counts as zeros.
 */
export function privatizeGradients(perExample: readonly NamedTensors[], layout: NamedTensors, opts: DpSgdStepOptions): { gradient: NamedTensors; clippedFraction: number } {
  const { clipNorm, noiseMultiplier, expectedBatchSize, rng } = opts;
  if (!(clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${clipNorm}`);
  if (!(noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${noiseMultiplier}`);
  if (!(expectedBatchSize > 0)) throw new RangeError(`expectedBatchSize must be > 0, received ${expectedBatchSize}`);
  const names = [...layout.keys()];
  const sizes = names.map((n) => layout.get(n)!.data.length);
  const parts = perExample.map((g, i) => {
    for (const name of g.keys()) if (!layout.has(name)) throw new RangeError(`example ${i} has tensor "${name}" that the layout lacks`);
    return names.map((name, t) => {
      const data = g.get(name)?.data ?? new Float32Array(sizes[t]!);
      if (data.length !== sizes[t]) throw new RangeError(`example ${i} tensor "${name}" has ${data.length} values, layout has ${sizes[t]}`);
      return data;
    });
  });
  const std = noiseMultiplier * clipNorm;
  const gradient: NamedTensors = new Map();
  let clipped = 0;
  if (std > 0) {
    const gridStep = opts.gridStep ?? std * DEFAULT_GRID_FRACTION;
    const sum = new GridClippedSum(sizes, { clipNorm, gridStep });
    for (const p of parts) if (sum.add(p).factor < 1) clipped++;
    const noisy = privatizeGridCounts(sum.counts, { sigma: std, gridStep, rng, divisor: expectedBatchSize });
    names.forEach((name, t) => gradient.set(name, { shape: [...layout.get(name)!.shape], data: noisy[t]! }));
  } else {
    const d = sizes.reduce((a, b) => a + b, 0);
    const sums = sizes.map((n) => new Float64Array(n));
    parts.forEach((p, i) => {
      let sq = 0;
      for (const data of p) for (const v of data) sq += v * v;
      if (!Number.isFinite(sq)) throw new RangeError(`example ${i} has a non-finite gradient`);
      const c = certifiedClipFactor(sq, d, clipNorm);
      if (c < 1) clipped++;
      p.forEach((data, t) => {
        const acc = sums[t]!;
        for (let k = 0; k < acc.length; k++) acc[k] = acc[k]! + c * data[k]!;
      });
    });
    names.forEach((name, t) => gradient.set(name, { shape: [...layout.get(name)!.shape], data: Float32Array.from(sums[t]!, (v) => v / expectedBatchSize) }));
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
