import type { RoundPrivacyParams } from '@fedlora/privacy';
import { distributedNoiseShare, dpRoundParams, perClientCountVariance, perClientNoiseVariance, validateDpConfig } from '@fedlora/privacy';
import type { RandomBytes } from '@fedlora/tensor';
import type { PlannedPrivacy, RoundPlan } from './types.js';

export type { PlannedPrivacy } from './types.js';

/**
 * The DP-FedAvg parameters of a round, as both sides must derive them: in distributed mode the
 * integer scale and the (padded) dimension come from the round's secure-aggregation encoding,
 * so the client's budget check, its noise share and the federation ledger use the same numbers.
 */
export function plannedPrivacy(plan: RoundPlan): PlannedPrivacy | undefined {
  const p = plan.privacy;
  if (p === undefined) return undefined;
  if (typeof p !== 'object' || p === null || !(p.dimension > 0) || !(p.delta > 0 && p.delta < 1)) {
    throw new RangeError(`round ${plan.round}: the plan's privacy parameters are malformed`);
  }
  if (p.mode === 'distributed') {
    const sa = plan.secagg;
    if (!sa) throw new RangeError(`round ${plan.round}: distributed noise without secure aggregation is refused (each update would be visible with only its own share of noise)`);
    const cfg = { ...p, scale: sa.encoding.scale, dimension: sa.encoding.paddedDim, secureAggregation: true, ...(p.countNoiseStd !== undefined ? { countScale: sa.countScale } : {}) };
    validateDpConfig(cfg);
    return cfg;
  }
  validateDpConfig(p);
  // Central noise behind secure aggregation: the sum went through the integer encoding (its scale and padded dimension), whose rounding is accounted (central-grid.ts).
  if (plan.secagg) return { ...p, scale: plan.secagg.encoding.scale, dimension: plan.secagg.encoding.paddedDim };
  return p;
}

/** Privacy parameters of the round with `survivors` updates summed (ledger: actual; budget check: planned minimum). */
export function roundPrivacyParams(plan: RoundPlan, survivors: number): RoundPrivacyParams | undefined {
  const p = plannedPrivacy(plan);
  return p && dpRoundParams(p, { survivors, dimension: p.dimension });
}

/** Fewest survivors the accounting plans for (distributed: minSurvivors; central noise does not depend on it). */
export function plannedSurvivors(plan: RoundPlan): number {
  const p = plannedPrivacy(plan);
  return p?.mode === 'distributed' ? (p.minSurvivors ?? 1) : 1;
}

/** This client's integer noise share for a distributed-DP round (undefined otherwise). */
export function noiseShareFor(plan: RoundPlan, rng: RandomBytes): ((n: number) => Int32Array) | undefined {
  const p = plannedPrivacy(plan);
  if (p?.mode !== 'distributed') return undefined;
  const perClientVariance = perClientNoiseVariance(p);
  return (length) => distributedNoiseShare({ noise: p.noise ?? 'skellam', perClientVariance, length, rng });
}

/**
 * Name of the update-header metric that carries a client's clipped-indicator bit
 * b_i = 1[||Delta_i|| <= C] in rounds with adaptive clipping (Andrew et al. 2021, Algorithm 1).
 */
export const CLIP_INDICATOR_METRIC = 'clipIndicator';

/** Whether the round uses adaptive clipping: each client then reports its clipped-indicator bit. */
export function reportsClipIndicator(plan: RoundPlan): boolean {
  return plannedPrivacy(plan)?.countNoiseStd !== undefined;
}

/** Distributed adaptive clipping: this client's integer noise share for the bit coordinate (undefined otherwise). */
export function countNoiseShareFor(plan: RoundPlan, rng: RandomBytes): number | undefined {
  const p = plannedPrivacy(plan);
  if (p?.mode !== 'distributed' || p.countNoiseStd === undefined) return undefined;
  return distributedNoiseShare({ noise: p.noise ?? 'skellam', perClientVariance: perClientCountVariance(p), length: 1, rng })[0]!;
}
