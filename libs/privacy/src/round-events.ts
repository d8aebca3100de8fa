import type { SamplingRecord } from './cohort-sampling-accounting.js';
import type { PrivacyEvent } from './accountant.js';
import { centralEffectiveNoiseMultiplier, type CentralGrid } from './central-grid.js';

/**
 * The privacy parameters of one DP-FedAvg round (institution level) or one client's local
 * DP-SGD (record level), exactly as recorded in a ledger entry. `roundEvents` turns them into
 * accountant events; the auditor re-derives the events from these parameters, so an entry whose
 * events do not follow from its parameters is flagged as mis-accounted.
 */
export type RoundPrivacyParams = CentralParams | DistributedParams | DpSgdParams;

/** Central DP-FedAvg: the coordinator adds N(0, (z C)^2) (on a fine grid) to the sum of clipped updates. */
export interface CentralParams {
  mode: 'central';
  clipNorm: number;
  noiseMultiplier: number;
  /** Poisson client-sampling rate (cohort / population); 1 when every institution takes part. */
  samplingRate: number;
  /** The cohort draw and why `samplingRate` is what it is (see accountedSampling); absent in older ledgers. */
  sampling?: SamplingRecord;
  /** Number of updates actually summed (recorded; central noise does not depend on it). */
  survivors: number;
  /**
   * Adaptive clipping (Andrew et al. 2021): std sigma_b of the noise on the centred count of
   * unclipped updates released with the sum; `noiseMultiplier` is then the update's z_Delta and
   * the round is accounted with the effective noise multiplier (z_Delta^-2 + (2 sigma_b)^-2)^(-1/2)
   * (Andrew et al. 2021, Section 3, Theorem 1).
   */
  countNoiseStd?: number;
  /** Adaptive clipping: what the round released about the clip (federation ledger only; not needed to account). */
  adaptive?: AdaptiveClipRecord;
  /**
   * The grid the noisy sum is formed on and the norm check's slack (central-grid.ts): the round is
   * accounted with z' = z C / (C (1 + tolerance) (1 + clipMargin(d)) + sqrt(d) h). Absent in
   * ledgers written before it was accounted (then z itself is).
   */
  grid?: CentralGrid;
}

/**
 * The adaptive-clipping side of a central round as the coordinator records it: the rule's
 * parameters, the noisy unclipped fraction it released (a DP output) and the clip norm it set
 * for the next round, so an auditor can follow C over rounds and a restarted coordinator resumes it.
 */
export interface AdaptiveClipRecord {
  targetQuantile: number;
  learningRate: number;
  expectedClients: number;
  noisyUnclippedFraction: number;
  nextClipNorm: number;
}

/**
 * Distributed DP-FedAvg: each survivor adds integer noise with `perClientVariance` (integer
 * domain, after scaling by `scale`), so the sum of the `survivors` actually summed carries
 * survivors x perClientVariance. Sensitivities are in the integer domain after rotation, scaling
 * and rounding (the secure-aggregation encoder supplies them).
 */
export interface DistributedParams {
  mode: 'distributed';
  noise: 'skellam' | 'discrete_gaussian';
  clipNorm: number;
  scale: number;
  perClientVariance: number;
  l1Sensitivity: number;
  l2Sensitivity: number;
  dimension: number;
  samplingRate: number;
  /** The cohort draw and why `samplingRate` is what it is (distributed: always 1, see accountedSampling); absent in older ledgers. */
  sampling?: SamplingRecord;
  survivors: number;
  /** True when secure aggregation hid the individual noisy updates. */
  secureAggregation: boolean;
  /**
   * Adaptive clipping: the extra securely summed coordinate S (2 b_i - 1) carrying each survivor's
   * clipped-indicator bit, with integer noise of `perClientVariance` per survivor (same kind as
   * the update's). Accounted as a second release composed with the update: integer sensitivity S
   * (one client adds or removes +-S), i.e. noise multiplier 2 sigma_b on the centred count, which
   * for Gaussian noise composes to Andrew et al. 2021, Theorem 1.
   */
  count?: { noiseStd: number; scale: number; perClientVariance: number };
  /** Adaptive clipping: what the round released about the clip (federation ledger only). */
  adaptive?: AdaptiveClipRecord;
}

/** Record-level DP-SGD inside one client: Poisson sampling of examples, per-example clipping, Gaussian noise. */
export interface DpSgdParams {
  mode: 'dp-sgd';
  clipNorm: number;
  noiseMultiplier: number;
  samplingRate: number;
  steps: number;
}

/** Accountant events implied by a round's parameters (empty when nothing was released). */
export function roundEvents(p: RoundPrivacyParams): PrivacyEvent[] {
  switch (p.mode) {
    case 'central': {
      if (p.survivors === 0) return [];
      // The grid and the norm check's slack raise the sensitivity: z' = z C / Delta_2 (central-grid.ts; KLS21, AKL21 Section 4).
      const z = p.grid ? centralEffectiveNoiseMultiplier(p.noiseMultiplier, p.clipNorm, p.grid) : p.noiseMultiplier;
      return [
        {
          mechanism: 'sampled_gaussian',
          // Andrew et al. 2021, Section 3, Theorem 1: sum (z_Delta) and centred count (sigma_b, sensitivity 1/2) together.
          noiseMultiplier: p.countNoiseStd ? (z ** -2 + (2 * p.countNoiseStd) ** -2) ** -0.5 : z,
          samplingRate: p.samplingRate,
          steps: 1,
        },
      ];
    }
    case 'distributed':
      if (p.survivors === 0) return [];
      return [...distributedEvents(p, p.perClientVariance, p.l1Sensitivity, p.l2Sensitivity, p.dimension), ...(p.count ? distributedEvents(p, p.count.perClientVariance, p.count.scale, p.count.scale, 1) : [])];
    case 'dp-sgd':
      if (p.steps === 0) return [];
      return [{ mechanism: 'sampled_gaussian', noiseMultiplier: p.noiseMultiplier, samplingRate: p.samplingRate, steps: p.steps }];
    default:
      throw new RangeError(`params.mode must be central, distributed or dp-sgd, received ${JSON.stringify((p as { mode?: unknown }).mode)}`);
  }
}

/** One distributed integer-noise release: Skellam (AKL21) or distributed discrete Gaussian (KLS21) over the survivors' shares. */
function distributedEvents(p: DistributedParams, perClientVariance: number, l1: number, l2: number, dimension: number): PrivacyEvent[] {
  const sampling = p.samplingRate < 1 ? { samplingRate: p.samplingRate } : {};
  if (p.noise === 'skellam') {
    return [{ mechanism: 'skellam', variance: p.survivors * perClientVariance, l1Sensitivity: l1, l2Sensitivity: l2, ...sampling, steps: 1 }];
  }
  return [{ mechanism: 'discrete_gaussian', sigma: Math.sqrt(perClientVariance), l2Sensitivity: l2, l1Sensitivity: l1, parties: p.survivors, dimension, ...sampling, steps: 1 }];
}

/** Thrown when distributed noise is planned without secure aggregation and not forced. */
export class InsecureDistributedNoiseError extends Error {
  override name = 'InsecureDistributedNoiseError';
}

/**
 * Refuses distributed noise without secure aggregation unless forced: each client's share of
 * noise is only a fraction of the total, so an update seen in the clear carries far too little
 * noise to protect that institution (its own epsilon would be about survivors times larger).
 */
export function assertDistributedNoiseIsSafe(opts: { mode: 'central' | 'distributed'; secureAggregation: boolean; force?: boolean }): void {
  if (opts.mode === 'distributed' && !opts.secureAggregation && !opts.force) {
    throw new InsecureDistributedNoiseError(
      'distributed noise requires secure aggregation: without it the coordinator sees each update with only its 1/n share of the noise, ' +
        'so each institution is far less protected than accounted; enable secure aggregation, use central noise, or force it explicitly',
    );
  }
}
