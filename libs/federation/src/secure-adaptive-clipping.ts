import type { AdaptiveClipper } from '@fedlora/privacy';
import { FederationError } from './errors.js';
import { plannedPrivacy } from './plan-privacy.js';
import type { RoundAggregationFactory } from './round-aggregation.js';

/**
 * Adaptive clipping (Andrew et al. 2021, Algorithm 1) with distributed noise over secure
 * aggregation: the clients' centred bits and their integer noise shares are summed inside the
 * secure vector (SecureRoundPlan.countScale), so the coordinator receives only the noisy centred
 * count, which moves the clipper to the next round's C. The averaged delta already carries the
 * distributed noise and is passed through unchanged.
 */
export function secureAdaptiveClipping(clipper: AdaptiveClipper): RoundAggregationFactory {
  return (plan) => {
    const clipNorm = plannedPrivacy(plan)?.clipNorm;
    if (clipNorm === undefined || Math.abs(clipper.clipNorm - clipNorm) > 1e-12 * clipNorm) {
      throw new RangeError(`round ${plan.round}: the plan's clip norm ${clipNorm} is not the adaptive clipper's current ${clipper.clipNorm}`);
    }
    const notSecure = () => new FederationError('failed-precondition', `round ${plan.round}: adaptive clipping with distributed noise runs over secure aggregation only`);
    return {
      add() {
        throw notSecure();
      },
      finalize() {
        throw notSecure();
      },
      finalizeSecure(mean, survivors, decoded) {
        if (decoded?.centredCount === undefined) throw new RangeError(`round ${plan.round}: secure aggregation returned no noisy count of unclipped updates`);
        const next = clipper.applyNoisyCentredCount(decoded.centredCount);
        const adaptiveClipping = { noisyUnclippedFraction: next.noisyFraction, nextClipNorm: next.clipNorm };
        return { delta: mean, metrics: { aggregated: survivors, clipNorm, ...adaptiveClipping }, adaptiveClipping };
      },
    };
  };
}
