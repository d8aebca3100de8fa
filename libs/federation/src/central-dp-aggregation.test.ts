import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { centralDpAggregation } from './central-dp-aggregation.js';
import type { RoundPlan } from './types.js';

const D = 20_000;
const plan: RoundPlan = {
  round: 1,
  attempt: 1,
  adapterSha256: '',
  tensors: [{ name: 'w', shape: [D] }],
  localSteps: 1,
  learningRate: 0,
  batchSize: 1,
  deadlineUnixMs: 0,
  nonce: 'n',
  extra: {},
};
const update = (value: number, numExamples = 1) => ({
  header: { clientId: 'c', round: 1, nonce: 'n', numExamples, trainLoss: 0, tensors: plan.tensors, metrics: {} },
  delta: new Map([['w', { shape: [D], data: new Float32Array(D).fill(value) }]]) as NamedTensors,
});

describe('centralDpAggregation', () => {
  it('refuses an update whose norm exceeds the clip', () => {
    const agg = centralDpAggregation({ clipNorm: 1, noiseMultiplier: 1, rng: seededRandomBytes(1) })(plan);
    expect(() => agg.add('big', update(1))).toThrow(/L2 norm 141\.42\d*, above the round's clip 1/);
  });

  it('averages with equal weights and adds noise of std zC/n to the mean', () => {
    const v = 0.5 / Math.sqrt(D); // norm 0.5
    const agg = centralDpAggregation({ clipNorm: 1, noiseMultiplier: 2, rng: seededRandomBytes(2) })(plan);
    agg.add('a', update(v, 1));
    agg.add('b', update(-v, 1000)); // example counts do not weigh under DP
    const { delta, metrics } = agg.finalize();
    const x = delta.get('w')!.data;
    let mean = 0;
    for (const e of x) mean += e;
    mean /= D;
    let varSum = 0;
    for (const e of x) varSum += (e - mean) ** 2;
    const std = Math.sqrt(varSum / (D - 1));
    expect(mean).toBeCloseTo(0, 1);
    expect(std).toBeGreaterThan(0.97);
    expect(std).toBeLessThan(1.03); // z C / n = 2 * 1 / 2
    expect(metrics.noiseStdOnMean).toBe(1);
  });

  it('with noise multiplier 0 is the plain unweighted mean', () => {
    const agg = centralDpAggregation({ clipNorm: 10, noiseMultiplier: 0, rng: seededRandomBytes(3) })(plan);
    agg.add('a', update(0.01));
    agg.add('b', update(0.03));
    expect(agg.finalize().delta.get('w')!.data[7]).toBeCloseTo(0.02, 6);
  });
});
