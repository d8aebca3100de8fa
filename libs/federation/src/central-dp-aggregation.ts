import type { AdaptiveClipper } from '@fedlora/privacy';
import { addGaussianNoiseToSum } from '@fedlora/privacy';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { l2NormNamed } from '@fedlora/tensor';
import { FederationError } from './errors.js';
import { updateTensors } from './lora-variant.js';
import { CLIP_INDICATOR_METRIC, plannedPrivacy } from './plan-privacy.js';
import type { RoundAggregationFactory } from './round-aggregation.js';

/** Relative slack on the clip check, for float32 rounding on the client. */
const CLIP_TOLERANCE = 1e-4;

/** Options of centralDpAggregation. */
export interface CentralDpOptions {
  /** Clip norm C for plans that carry no privacy parameters (a plan's `privacy.clipNorm` wins). */
  clipNorm: number;
  /** Noise multiplier for plans that carry none (a plan's `privacy.noiseMultiplier` wins). */
  noiseMultiplier: number;
  /** CSPRNG for the noise on the sum and on the count. */
  rng: RandomBytes;
  /**
   * Adaptive clipping (Andrew et al. 2021, Algorithm 1): the clipper whose current clip norm the
   * round's plan carries. Each update must report its bit b_i in header.metrics.clipIndicator;
   * finalize sums the bits, adds the count noise N(0, sigma_b^2) (grid-exact) and moves the
   * clipper to the next round's C.
   */
  adaptive?: AdaptiveClipper;
}

/**
 * Institution-level DP-FedAvg with central noise (McMahan, Ramage, Talwar, Zhang 2018, Alg. 1
 * with the fixed-denominator-free "uniform weights" estimator): every update is clipped to
 * L2 <= C by its client (checked here: a larger one is refused), updates are summed with equal
 * weight (example weights would let one institution's sensitivity exceed C), the coordinator
 * adds N(0, (zC)^2) per coordinate to the sum, exactly on a fine grid (no floating-point
 * Gaussian: Mironov 2012), and divides by the number of updates summed. C and z are the round's
 * (from its plan), so they may change between rounds (adaptive clipping).
 */
export function centralDpAggregation(opts: CentralDpOptions): RoundAggregationFactory {
  if (!(opts.clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${opts.clipNorm}`);
  if (!(opts.noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${opts.noiseMultiplier}`);
  return (plan) => {
    const planned = plannedPrivacy(plan);
    const clipNorm = planned?.clipNorm ?? opts.clipNorm;
    const noiseMultiplier = planned?.noiseMultiplier ?? opts.noiseMultiplier;
    const adaptive = opts.adaptive;
    if (adaptive && Math.abs(adaptive.clipNorm - clipNorm) > 1e-12 * clipNorm) {
      throw new RangeError(`round ${plan.round}: the plan's clip norm ${clipNorm} is not the adaptive clipper's current ${adaptive.clipNorm}`);
    }
    const carried = updateTensors(plan);
    const sums = new Map<string, Float64Array>(carried.map((t) => [t.name, new Float64Array(t.shape.reduce((a, b) => a * b, 1))]));
    let count = 0;
    let unclipped = 0;
    return {
      add(clientId, update) {
        const norm = l2NormNamed(update.delta);
        if (norm > clipNorm * (1 + CLIP_TOLERANCE)) {
          throw new FederationError('invalid-argument', `update of ${clientId} has L2 norm ${norm.toPrecision(6)}, above the round's clip ${clipNorm}: clip before sending`);
        }
        const bit = update.header.metrics[CLIP_INDICATOR_METRIC];
        if (adaptive && bit !== 0 && bit !== 1) {
          throw new FederationError(
            'invalid-argument',
            `round ${plan.round} uses adaptive clipping: the update of ${clientId} must report metrics.${CLIP_INDICATOR_METRIC} = 1 if its norm before clipping was <= ${clipNorm}, else 0; received ${String(bit)}`,
          );
        }
        for (const [name, sum] of sums) {
          const d = update.delta.get(name)!.data;
          for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + d[i]!;
        }
        count++;
        if (bit === 1) unclipped++;
      },
      finalize() {
        if (count === 0) throw new RangeError('cannot average zero updates');
        const sum: NamedTensors = new Map();
        for (const t of carried) sum.set(t.name, { shape: [...t.shape], data: Float32Array.from(sums.get(t.name)!) });
        const noisy = addGaussianNoiseToSum(sum, { clipNorm, noiseMultiplier, rng: opts.rng });
        for (const t of noisy.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! / count;
        const metrics: Record<string, number> = { aggregated: count, noiseStdOnMean: (noiseMultiplier * clipNorm) / count, clipNorm };
        if (!adaptive) return { delta: noisy, metrics };
        // Only the noisy fraction leaves this function; the exact count of unclipped updates does not.
        const next = adaptive.update({ unclipped, reports: count }, opts.rng);
        const adaptiveClipping = { noisyUnclippedFraction: next.noisyFraction, nextClipNorm: next.clipNorm };
        return { delta: noisy, metrics: { ...metrics, ...adaptiveClipping }, adaptiveClipping };
      },
      finalizeSecure(mean, survivors) {
        // Secure aggregation hid the updates (each encoded within C): noise the sum n * mean the same way.
        if (adaptive) throw new RangeError('adaptive clipping needs each clipped-indicator bit, which secure aggregation hides: not supported with secure aggregation yet');
        if (!Number.isInteger(survivors) || survivors < 1) throw new RangeError(`cannot average ${survivors} updates`);
        const sum: NamedTensors = new Map();
        for (const [name, t] of mean) sum.set(name, { shape: [...t.shape], data: Float32Array.from(t.data, (v) => v * survivors) });
        const noisy = addGaussianNoiseToSum(sum, { clipNorm, noiseMultiplier, rng: opts.rng });
        for (const t of noisy.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! / survivors;
        return { delta: noisy, metrics: { aggregated: survivors, noiseStdOnMean: (noiseMultiplier * clipNorm) / survivors, clipNorm } };
      },
    };
  };
}
