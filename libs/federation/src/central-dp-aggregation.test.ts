import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { AdaptiveClipper, privatizeGridCounts } from '@fedlora/privacy';
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
};
const update = (value: number, numExamples = 1, metrics: Record<string, number> = {}) => ({
  header: { clientId: 'c', round: 1, nonce: 'n', numExamples, trainLoss: 0, tensors: plan.tensors, metrics },
  delta: new Map([['w', { shape: [D], data: new Float32Array(D).fill(value) }]]) as NamedTensors,
});

describe('centralDpAggregation forms the noisy sum from integers (issue 16, finding 11)', () => {
  it('releases exactly (K + Z) h / n: updates rounded to the grid, summed as integers, noised, scaled once', () => {
    const z = 1.3;
    const C = 1;
    const h = z * C * 2 ** -16;
    const rng = () => seededRandomBytes('integer-sum');
    const rows = [0.3, -0.2, 0.45].map((s, c) => Float32Array.from({ length: D }, (_, i) => (s * Math.sin(i + c)) / Math.sqrt(D)));
    const agg = centralDpAggregation({ clipNorm: C, noiseMultiplier: z, rng: rng() })(plan);
    rows.forEach((data, c) => agg.add(`c${c}`, { ...update(0), delta: new Map([['w', { shape: [D], data }]]) }));
    const got = agg.finalize().delta.get('w')!.data;
    // The reference: K = sum_i round(Delta_i / h) in integers, then privatizeGridCounts with the same CSPRNG stream.
    const K = new Float64Array(D);
    for (const r of rows) for (let i = 0; i < D; i++) K[i] = K[i]! + Math.round(r[i]! / h);
    const [want] = privatizeGridCounts([K], { sigma: z * C, gridStep: h, rng: rng(), divisor: rows.length });
    expect(got).toEqual(want);
  });
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

  it("takes the round's clip and noise from its plan", () => {
    const planned: RoundPlan = { ...plan, privacy: { mode: 'central', clipNorm: 0.5, noiseMultiplier: 1, delta: 1e-5, dimension: D, secureAggregation: false } };
    const agg = centralDpAggregation({ clipNorm: 10, noiseMultiplier: 0, rng: seededRandomBytes(4) })(planned);
    expect(() => agg.add('a', update(0.6 / Math.sqrt(D)))).toThrow(/above the round's clip 0.5/);
  });
});

describe('centralDpAggregation after secure aggregation', () => {
  it('adds the central noise to the securely summed mean (std zC/n), which the coordinator would otherwise release bare', () => {
    const agg = centralDpAggregation({ clipNorm: 1, noiseMultiplier: 2, rng: seededRandomBytes(8) })(plan);
    const mean: NamedTensors = new Map([['w', { shape: [D], data: new Float32Array(D).fill(0.25) }]]);
    const { delta, metrics } = agg.finalizeSecure!(mean, 2);
    const x = delta.get('w')!.data;
    let m = 0;
    for (const e of x) m += e;
    m /= D;
    let v = 0;
    for (const e of x) v += (e - m) ** 2;
    const std = Math.sqrt(v / (D - 1));
    expect(m).toBeCloseTo(0.25, 1);
    expect(std).toBeGreaterThan(0.97);
    expect(std).toBeLessThan(1.03);
    expect(metrics).toMatchObject({ aggregated: 2, noiseStdOnMean: 1 });
  });
});

describe('centralDpAggregation with adaptive clipping (Andrew et al. 2021)', () => {
  const adaptivePlan = (clipNorm: number): RoundPlan => ({
    ...plan,
    privacy: { mode: 'central', clipNorm, noiseMultiplier: 1.2, countNoiseStd: 1, delta: 1e-5, dimension: D, secureAggregation: false },
  });

  it('sums the clipped-indicator bits and moves the clip towards the target quantile', () => {
    const clipper = new AdaptiveClipper({ initialClip: 1, countNoiseStd: 0, expectedClients: 4 });
    const agg = centralDpAggregation({ clipNorm: 1, noiseMultiplier: 1, rng: seededRandomBytes(5), adaptive: clipper })(adaptivePlan(1));
    for (const bit of [1, 1, 1, 0]) agg.add('c', update(0.1 / Math.sqrt(D), 1, { clipIndicator: bit }));
    const { metrics } = agg.finalize();
    expect(metrics.noisyUnclippedFraction).toBeCloseTo(0.75, 12);
    expect(metrics.clipNorm).toBe(1);
    expect(metrics.nextClipNorm).toBeCloseTo(Math.exp(-0.2 * (0.75 - 0.5)), 12); // more unclipped than the median: C shrinks
    expect(clipper.clipNorm).toBe(metrics.nextClipNorm);
  });

  it('refuses an update that does not report its bit', () => {
    const clipper = new AdaptiveClipper({ initialClip: 1, countNoiseStd: 1, expectedClients: 2 });
    const agg = centralDpAggregation({ clipNorm: 1, noiseMultiplier: 1, rng: seededRandomBytes(6), adaptive: clipper })(adaptivePlan(1));
    expect(() => agg.add('c', update(0))).toThrow(/must report metrics.clipIndicator = 1 if its norm before clipping was <= 1, else 0; received undefined/);
  });

  it("refuses a plan whose clip is not the clipper's", () => {
    const clipper = new AdaptiveClipper({ initialClip: 1, countNoiseStd: 1, expectedClients: 2 });
    expect(() => centralDpAggregation({ clipNorm: 1, noiseMultiplier: 1, rng: seededRandomBytes(7), adaptive: clipper })(adaptivePlan(2))).toThrow(/not the adaptive clipper's current 1/);
  });
});
