import { seededRandomBytes, type NamedTensors } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { poissonSample, privatizeGradients } from './dp-sgd.js';

const layout: NamedTensors = new Map([['lora_A', { shape: [2], data: new Float32Array(2) }]]);
const ex = (a: number, b: number): NamedTensors => new Map([['lora_A', { shape: [2], data: Float32Array.from([a, b]) }]]);

describe('privatizeGradients (DP-SGD step)', () => {
  it('clips each example to C and divides by the expected batch size (no noise)', () => {
    const { gradient, clippedFraction } = privatizeGradients([ex(3, 4), ex(0.3, 0.4)], layout, { clipNorm: 1, noiseMultiplier: 0, expectedBatchSize: 2, rng: seededRandomBytes(1) });
    const g = gradient.get('lora_A')!.data;
    expect(g[0]).toBeCloseTo((0.6 + 0.3) / 2, 6);
    expect(g[1]).toBeCloseTo((0.8 + 0.4) / 2, 6);
    expect(clippedFraction).toBe(0.5);
  });

  it('adds noise of std z C / expected batch size, also to an empty batch', () => {
    const big: NamedTensors = new Map([['w', { shape: [20_000], data: new Float32Array(20_000) }]]);
    const { gradient } = privatizeGradients([], big, { clipNorm: 2, noiseMultiplier: 1.5, expectedBatchSize: 10, rng: seededRandomBytes('n') });
    const d = gradient.get('w')!.data;
    let s2 = 0;
    for (const v of d) s2 += v * v;
    expect(Math.abs(Math.sqrt(s2 / d.length) / 0.3 - 1)).toBeLessThan(0.03);
  });

  it('rejects an example whose tensors do not match the layout', () => {
    expect(() => privatizeGradients([new Map([['other', { shape: [1], data: new Float32Array(1) }]])], layout, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: 1, rng: seededRandomBytes(1) })).toThrow(/other/);
  });
});

describe('poissonSample', () => {
  it('selects each example independently with probability q', () => {
    const picks = poissonSample(100_000, 0.04, seededRandomBytes('ps'));
    expect(Math.abs(picks.length - 4000)).toBeLessThan(4 * Math.sqrt(100_000 * 0.04 * 0.96));
    expect(new Set(picks).size).toBe(picks.length);
    expect(poissonSample(10, 1, seededRandomBytes(1))).toHaveLength(10);
    expect(poissonSample(10, 0, seededRandomBytes(1))).toHaveLength(0);
  });
});
