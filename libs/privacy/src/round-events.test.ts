import { describe, expect, it } from 'vitest';
import { assertDistributedNoiseIsSafe, InsecureDistributedNoiseError, roundEvents } from './round-events.js';

describe('roundEvents', () => {
  it('central DP-FedAvg is a sampled Gaussian with the noise multiplier', () => {
    expect(roundEvents({ mode: 'central', clipNorm: 1, noiseMultiplier: 1.2, samplingRate: 0.1, survivors: 8 })).toEqual([
      { mechanism: 'sampled_gaussian', noiseMultiplier: 1.2, samplingRate: 0.1, steps: 1 },
    ]);
  });

  it('distributed discrete Gaussian is accounted over the survivors with the KLS21 parameters', () => {
    const [e] = roundEvents({
      mode: 'distributed',
      noise: 'discrete_gaussian',
      clipNorm: 1,
      scale: 64,
      perClientVariance: 400,
      l1Sensitivity: 500,
      l2Sensitivity: 70,
      dimension: 64,
      samplingRate: 1,
      survivors: 3,
      secureAggregation: true,
    });
    expect(e).toMatchObject({ mechanism: 'discrete_gaussian', sigma: 20, parties: 3, dimension: 64 });
  });

  it('adaptive clipping is accounted with the effective noise multiplier of sum and count', () => {
    const [e] = roundEvents({ mode: 'central', clipNorm: 1, noiseMultiplier: 1.2, samplingRate: 1, survivors: 8, countNoiseStd: 4 });
    expect(e).toMatchObject({ mechanism: 'sampled_gaussian', noiseMultiplier: (1.2 ** -2 + 8 ** -2) ** -0.5 });
  });

  it('a round where nothing was summed releases nothing', () => {
    expect(roundEvents({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, survivors: 0 })).toEqual([]);
    expect(roundEvents({ mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.01, steps: 0 })).toEqual([]);
  });
});

describe('assertDistributedNoiseIsSafe', () => {
  it('refuses distributed noise without secure aggregation and says why', () => {
    expect(() => assertDistributedNoiseIsSafe({ mode: 'distributed', secureAggregation: false })).toThrow(InsecureDistributedNoiseError);
    expect(() => assertDistributedNoiseIsSafe({ mode: 'distributed', secureAggregation: false })).toThrow(/requires secure aggregation/);
  });

  it('allows it when forced, with secure aggregation, or in central mode', () => {
    expect(() => assertDistributedNoiseIsSafe({ mode: 'distributed', secureAggregation: false, force: true })).not.toThrow();
    expect(() => assertDistributedNoiseIsSafe({ mode: 'distributed', secureAggregation: true })).not.toThrow();
    expect(() => assertDistributedNoiseIsSafe({ mode: 'central', secureAggregation: false })).not.toThrow();
  });
});
