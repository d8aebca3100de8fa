import { l2NormNamed, seededRandomBytes, type NamedTensors } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { AdaptiveClipper, clipL2 } from './clipping.js';

function update(values: number[][]): NamedTensors {
  return new Map(values.map((v, i) => [`t${i}`, { shape: [v.length], data: Float32Array.from(v) }]));
}

describe('clipL2', () => {
  it('scales an update whose norm exceeds the clip down to exactly the clip', () => {
    const u = update([[3, 0], [0, 4]]); // norm 5
    const { clipped, norm, scale } = clipL2(u, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(scale).toBeCloseTo(0.2, 6);
    expect(l2NormNamed(clipped)).toBeLessThanOrEqual(1);
    expect(l2NormNamed(clipped)).toBeCloseTo(1, 5);
    expect(u.get('t0')!.data[0]).toBe(3); // input untouched
  });

  it('leaves an update within the clip unchanged', () => {
    const { clipped, scale } = clipL2(update([[0.1, 0.2]]), 1);
    expect(scale).toBe(1);
    expect(Array.from(clipped.get('t0')!.data)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
  });

  it('refuses a non-finite update and a non-positive clip', () => {
    expect(() => clipL2(update([[Number.NaN]]), 1)).toThrow(/t0/);
    expect(() => clipL2(update([[1]]), 0)).toThrow(/clipNorm/);
  });
});

describe('AdaptiveClipper (Andrew et al. 2021)', () => {
  it('converges towards the target quantile of the update norms without noise', () => {
    const norms = Array.from({ length: 100 }, (_, i) => (i + 1) / 100); // median 0.5
    const clipper = new AdaptiveClipper({ initialClip: 5, targetQuantile: 0.5, learningRate: 0.2, countNoiseStd: 0, expectedClients: 100 });
    const rng = seededRandomBytes('clip');
    for (let r = 0; r < 200; r++) clipper.update(norms.map((n) => clipper.indicator(n)), rng);
    expect(clipper.clipNorm).toBeGreaterThan(0.4);
    expect(clipper.clipNorm).toBeLessThan(0.6);
  });

  it('grows the clip when every update is clipped', () => {
    const clipper = new AdaptiveClipper({ initialClip: 1, countNoiseStd: 1, expectedClients: 10 });
    const { clipNorm } = clipper.update(new Array(10).fill(0), seededRandomBytes('g'));
    expect(clipNorm).toBeGreaterThan(1);
  });

  it('uses centred bits: with no noise the fraction is the unclipped share', () => {
    const clipper = new AdaptiveClipper({ initialClip: 1, countNoiseStd: 0, expectedClients: 4 });
    expect(clipper.update({ unclipped: 3, reports: 4 }, seededRandomBytes('c')).noisyFraction).toBeCloseTo(0.75, 12);
  });

  it('effective and update noise multipliers are inverse', () => {
    const zDelta = AdaptiveClipper.updateNoiseMultiplier(1.3, 5);
    expect(AdaptiveClipper.effectiveNoiseMultiplier(zDelta, 5)).toBeCloseTo(1.3, 12);
  });

  it('computes the update noise multiplier of Section 3.1', () => {
    const z = AdaptiveClipper.updateNoiseMultiplier(1, 10);
    expect(z).toBeCloseTo((1 - 1 / 400) ** -0.5, 12);
    expect(() => AdaptiveClipper.updateNoiseMultiplier(1, 0.4)).toThrow(/too small/);
  });
});
