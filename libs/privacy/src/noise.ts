import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { DEFAULT_GRID_FRACTION, gaussianOnGrid, sampleDiscreteGaussian, sampleSkellam } from './samplers.js';

/**
 * Noise as the protocols add it: central Gaussian noise on a sum of clipped updates (DP-FedAvg,
 * McMahan et al. 2018) or of clipped per-example gradients (DP-SGD, Abadi et al. 2016), and each
 * client's integer share of distributed noise (Skellam, AKL 2021; discrete Gaussian, KLS 2021).
 * All draw from a RandomBytes passed in (cryptoRandomBytes in production).
 */

/**
 * Adds N(0, (noiseMultiplier * clipNorm)^2) to every coordinate of `sum`, sampled exactly as a
 * discrete Gaussian on the grid gridStep*Z (`gaussianOnGrid`). Each value is first rounded to the
 * grid, which moves the L2 sensitivity by at most sqrt(d) * gridStep (default step: std * 2^-16).
 * Returns new tensors; float32 storage rounds the result afterwards (post-processing).
 */
export function addGaussianNoiseToSum(
  sum: NamedTensors,
  opts: { clipNorm: number; noiseMultiplier: number; rng: RandomBytes; gridStep?: number },
): NamedTensors {
  const { clipNorm, noiseMultiplier, rng } = opts;
  if (!(clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${clipNorm}`);
  if (!(noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${noiseMultiplier}`);
  const std = noiseMultiplier * clipNorm;
  const out: NamedTensors = new Map();
  if (std === 0) {
    for (const [k, t] of sum) out.set(k, { shape: [...t.shape], data: new Float32Array(t.data) });
    return out;
  }
  const step = opts.gridStep ?? std * DEFAULT_GRID_FRACTION;
  for (const [name, t] of sum) {
    const noise = gaussianOnGrid(std, t.data.length, rng, step);
    const data = new Float32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = Math.round(t.data[i]! / step) * step + noise[i]!;
    out.set(name, { shape: [...t.shape], data });
  }
  return out;
}

/** Which integer noise a client adds in distributed mode. */
export type DistributedNoise = 'skellam' | 'discrete_gaussian';

/**
 * One client's share of distributed noise for `length` integer coordinates, with variance
 * `perClientVariance` (integer domain): Skellam Sk(v/2, v/2) = Poisson(v/2) - Poisson(v/2), or the
 * discrete Gaussian N_Z(0, v). The sum over n survivors then carries n * v (Skellam exactly; the
 * discrete Gaussian approximately, which the KLS 2021 accounting covers).
 */
export function distributedNoiseShare(opts: { noise: DistributedNoise; perClientVariance: number; length: number; rng: RandomBytes }): Int32Array {
  const { noise, perClientVariance, length, rng } = opts;
  if (!(perClientVariance > 0)) throw new RangeError(`perClientVariance must be > 0, received ${perClientVariance}`);
  if (noise === 'skellam') return sampleSkellam(perClientVariance / 2, length, rng);
  if (noise === 'discrete_gaussian') return sampleDiscreteGaussian(perClientVariance, length, rng);
  throw new RangeError(`noise must be "skellam" or "discrete_gaussian", received ${JSON.stringify(noise)}`);
}

/**
 * Per-client variance so that the sum over `minSurvivors` clients reaches `aggregateVariance`.
 * Planning with the fewest survivors that can still complete a round (the secure-aggregation
 * threshold) keeps the accounting honest when clients drop: more survivors only add noise.
 */
export function perClientVariance(aggregateVariance: number, minSurvivors: number): number {
  if (!(aggregateVariance > 0)) throw new RangeError(`aggregateVariance must be > 0, received ${aggregateVariance}`);
  if (!Number.isInteger(minSurvivors) || minSurvivors < 1) throw new RangeError(`minSurvivors must be an integer >= 1, received ${minSurvivors}`);
  return aggregateVariance / minSurvivors;
}
