import type { AdaptiveClipper } from '@fedlora/privacy';
import { CENTRAL_CLIP_TOLERANCE, CentralGridSum, centralGrid, privatizeGridCounts } from '@fedlora/privacy';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { l2NormNamed } from '@fedlora/tensor';
import { FederationError } from './errors.js';
import { updateTensors } from './lora-variant.js';
import { CLIP_INDICATOR_METRIC, plannedPrivacy } from './plan-privacy.js';
import type { RoundAggregationFactory } from './round-aggregation.js';

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
 *
 * The sum is formed in integers (central-grid.ts, after Kairouz, Liu, Steinke 2021 and Agarwal,
 * Kairouz, Liu 2021): each update is rounded to the noise grid h Z as it arrives, the integer
 * counts K are summed exactly, the integer noise Z is added, and the average is (K + Z) h / n,
 * computed once from the noisy integers. The rounding (up to sqrt(d) h) and the norm check's
 * slack (CENTRAL_CLIP_TOLERANCE) are accounted in the ledger through CentralParams.grid.
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
    const std = noiseMultiplier * clipNorm;
    // Without noise (z = 0, tests only) there is no grid: the grid step is then a fine fixed fraction of C.
    const gridStep = std > 0 ? centralGrid(noiseMultiplier, clipNorm, Math.max(1, carried.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0))).gridStep : clipNorm * 2 ** -30;
    const grid = new CentralGridSum(carried, gridStep);
    let count = 0;
    let unclipped = 0;
    /** (K + Z) h / n from the integer counts: the noisy integers first, one rounding to float32 after (privatizeGridCounts). */
    const noisyAverage = (g: CentralGridSum, n: number): NamedTensors => {
      const data = std > 0 ? privatizeGridCounts(g.counts, { sigma: std, gridStep, rng: opts.rng, divisor: n }) : g.counts.map((k) => Float32Array.from(k, (v) => (v * gridStep) / n));
      return new Map(carried.map((t, i) => [t.name, { shape: [...t.shape], data: data[i]! }]));
    };
    return {
      add(clientId, update) {
        const norm = l2NormNamed(update.delta);
        if (!(norm <= clipNorm * (1 + CENTRAL_CLIP_TOLERANCE))) {
          throw new FederationError('invalid-argument', `update of ${clientId} has L2 norm ${norm.toPrecision(6)}, above the round's clip ${clipNorm}: clip before sending`);
        }
        const bit = update.header.metrics[CLIP_INDICATOR_METRIC];
        if (adaptive && bit !== 0 && bit !== 1) {
          throw new FederationError(
            'invalid-argument',
            `round ${plan.round} uses adaptive clipping: the update of ${clientId} must report metrics.${CLIP_INDICATOR_METRIC} = 1 if its norm before clipping was <= ${clipNorm}, else 0; received ${String(bit)}`,
          );
        }
        grid.add(update.delta);
        count++;
        if (bit === 1) unclipped++;
      },
      finalize() {
        if (count === 0) throw new RangeError('cannot average zero updates');
        const noisy = noisyAverage(grid, count);
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
        // Only the sum is known here: it is rounded to the grid as a whole (sensitivity still within ||Delta|| + sqrt(d) h).
        const sum = new Map([...mean].map(([name, t]) => [name, { data: Float64Array.from(t.data, (v) => v * survivors) }]));
        const secureGrid = new CentralGridSum(carried, gridStep);
        secureGrid.add(sum);
        const noisy = noisyAverage(secureGrid, survivors);
        return { delta: noisy, metrics: { aggregated: survivors, noiseStdOnMean: (noiseMultiplier * clipNorm) / survivors, clipNorm } };
      },
    };
  };
}
