import type { RoundPlan } from '@fedlora/federation';
import type { RoundPrivacyParams } from '@fedlora/privacy';
import { roundEvents } from '@fedlora/privacy';
import { describe, expect, it } from 'vitest';
import { withAccountedSampling } from './federation-privacy.js';

const plan = (sampling: RoundPlan['sampling']): RoundPlan => ({ round: 1, attempt: 1, adapterSha256: '', tensors: [], localSteps: 1, learningRate: 0, batchSize: 1, deadlineUnixMs: 0, nonce: '', ...(sampling ? { sampling } : {}) });
const draw = { mode: 'poisson' as const, population: 1000, expectedCohort: 50, rate: 0.05, drawn: 48 };

describe('the ledger accounts the sampling rate the cohort draw allows', () => {
  it('central + Poisson: the sampled Gaussian with q = cohort / population', () => {
    const p = withAccountedSampling({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, survivors: 48 }, plan(draw));
    expect(p).toMatchObject({ samplingRate: 0.05, sampling: { basis: 'poisson-by-trusted-coordinator', population: 1000, expectedCohort: 50, drawn: 48 } });
    expect(roundEvents(p)).toEqual([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 0.05, steps: 1 }]);
  });

  it('distributed: q = 1 even when the plan said less, with the reason', () => {
    const d: RoundPrivacyParams = { mode: 'distributed', noise: 'skellam', clipNorm: 1, scale: 100, perClientVariance: 4000, l1Sensitivity: 1100, l2Sensitivity: 110, dimension: 100, samplingRate: 0.05, survivors: 48, secureAggregation: true };
    const p = withAccountedSampling(d, plan(draw));
    expect(p).toMatchObject({ samplingRate: 1, sampling: { basis: 'distributed-not-verifiable' } });
    expect(roundEvents(p)[0]).not.toHaveProperty('samplingRate');
  });

  it('a plan without a recorded draw is left as configured', () => {
    const c: RoundPrivacyParams = { mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, survivors: 3 };
    expect(withAccountedSampling(c, plan(undefined))).toEqual(c);
  });
});
