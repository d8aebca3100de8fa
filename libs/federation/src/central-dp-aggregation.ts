import { addGaussianNoiseToSum } from '@fedlora/privacy';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { l2NormNamed } from '@fedlora/tensor';
import { FederationError } from './errors.js';
import type { RoundAggregationFactory } from './round-aggregation.js';

/** Relative slack on the clip check, for float32 rounding on the client. */
const CLIP_TOLERANCE = 1e-4;

/**
 * Institution-level DP-FedAvg with central noise (McMahan, Ramage, Talwar, Zhang 2018, Alg. 1
 * with the fixed-denominator-free "uniform weights" estimator): every update is clipped to
 * L2 <= C by its client (checked here: a larger one is refused), updates are summed with equal
 * weight (example weights would let one institution's sensitivity exceed C), the coordinator
 * adds N(0, (zC)^2) per coordinate to the sum, exactly on a fine grid (no floating-point
 * Gaussian: Mironov 2012), and divides by the number of updates summed.
 */
export function centralDpAggregation(opts: { clipNorm: number; noiseMultiplier: number; rng: RandomBytes }): RoundAggregationFactory {
  if (!(opts.clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${opts.clipNorm}`);
  if (!(opts.noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${opts.noiseMultiplier}`);
  return (plan) => {
    const sums = new Map<string, Float64Array>(plan.tensors.map((t) => [t.name, new Float64Array(t.shape.reduce((a, b) => a * b, 1))]));
    let count = 0;
    return {
      add(clientId, update) {
        const norm = l2NormNamed(update.delta);
        if (norm > opts.clipNorm * (1 + CLIP_TOLERANCE)) {
          throw new FederationError('invalid-argument', `update of ${clientId} has L2 norm ${norm.toPrecision(6)}, above the round's clip ${opts.clipNorm}: clip before sending`);
        }
        for (const [name, sum] of sums) {
          const d = update.delta.get(name)!.data;
          for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + d[i]!;
        }
        count++;
      },
      finalize() {
        if (count === 0) throw new RangeError('cannot average zero updates');
        const sum: NamedTensors = new Map();
        for (const t of plan.tensors) sum.set(t.name, { shape: [...t.shape], data: Float32Array.from(sums.get(t.name)!) });
        const noisy = addGaussianNoiseToSum(sum, { clipNorm: opts.clipNorm, noiseMultiplier: opts.noiseMultiplier, rng: opts.rng });
        for (const t of noisy.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! / count;
        return { delta: noisy, metrics: { aggregated: count, noiseStdOnMean: (opts.noiseMultiplier * opts.clipNorm) / count } };
      },
    };
  };
}
