import { describe, expect, it } from 'vitest';
import type { RoundPlan } from '@fedlora/federation';
import { plannedPrivacy } from '@fedlora/federation';
import type { PrivacyEvent } from '@fedlora/privacy';
import { calibrateDpFedAvg, dpRoundParams, epsilonOf, roundEvents } from '@fedlora/privacy';
import { chooseEncodingParams } from '@fedlora/secagg';
import { recalibratedForDimension } from './simulation-privacy.js';
import type { SimulationOptions } from './simulation-types.js';

/** The federation ledger's epsilon after `rounds` rounds, accounted from the plan exactly as the coordinator does (plannedPrivacy). */
function ledgerEpsilon(o: SimulationOptions, d: number, cohort: number): number {
  const p = o.privacy!;
  const plan = {
    round: 1,
    privacy: { mode: 'central', clipNorm: p.clipNorm, noiseMultiplier: p.noiseMultiplier, samplingRate: 1, secureAggregation: !!o.secagg, delta: p.delta, dimension: d },
    ...(o.secagg ? { secagg: { encoding: chooseEncodingParams({ n: cohort, d, clip: p.clipNorm, bits: 32 }) } } : {}),
  } as unknown as RoundPlan;
  const planned = plannedPrivacy(plan)!;
  const one = roundEvents(dpRoundParams(planned, { survivors: cohort, dimension: planned.dimension }));
  const all: PrivacyEvent[] = [];
  for (let r = 0; r < o.rounds; r++) all.push(...one);
  return epsilonOf(all, { delta: p.delta }).epsilon;
}

describe('budget-first central DP-FedAvg in simulate', () => {
  const d = 24_576; // the bundled model's LoRA update: padded to 32,768 behind secure aggregation
  const options = (secagg: boolean): SimulationOptions => {
    const calibration = calibrateDpFedAvg({ targetEpsilon: 8, delta: 1e-5, institutions: 3, rounds: 3, config: { mode: 'central', clipNorm: 0.1, samplingRate: 1, secureAggregation: secagg }, dimension: 1 });
    return {
      clients: 3,
      rounds: 3,
      ...(secagg ? { secagg: { dropout: 0 } } : {}),
      privacy: { mode: 'central', clipNorm: 0.1, noiseMultiplier: calibration.noiseMultiplier, delta: 1e-5, clientEpsilon: 100, calibration },
    } as unknown as SimulationOptions;
  };

  it('behind SecAgg+, the ledger spends the target and no more (padded dimension and encoding scale accounted)', () => {
    const o = recalibratedForDimension(options(true), d);
    const eps = ledgerEpsilon(o, d, 3);
    expect(eps).toBeLessThanOrEqual(8);
    expect(eps).toBeGreaterThan(8 - 1e-3);
    // A smaller cohort than the population gets a larger encoding scale: it spends less, never more.
    expect(ledgerEpsilon(o, d, 2)).toBeLessThanOrEqual(eps);
  });

  it('without secure aggregation, the update dimension itself is accounted', () => {
    const o = recalibratedForDimension(options(false), d);
    const eps = ledgerEpsilon(o, d, 3);
    expect(eps).toBeLessThanOrEqual(8);
    expect(eps).toBeGreaterThan(8 - 1e-3);
  });
});
