import { seededRandomBytes, type NamedTensors } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { addGaussianNoiseToSum, distributedNoiseShare, perClientVariance } from './noise.js';

describe('addGaussianNoiseToSum', () => {
  it('adds noise with standard deviation z * C and leaves the input untouched', () => {
    const sum: NamedTensors = new Map([['w', { shape: [20_000], data: new Float32Array(20_000).fill(0.5) }]]);
    const noisy = addGaussianNoiseToSum(sum, { clipNorm: 0.1, noiseMultiplier: 2, rng: seededRandomBytes('central') });
    const d = noisy.get('w')!.data;
    let s = 0;
    let s2 = 0;
    for (const v of d) {
      s += v - 0.5;
      s2 += (v - 0.5) ** 2;
    }
    const mean = s / d.length;
    const std = Math.sqrt(s2 / d.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(4 * (0.2 / Math.sqrt(d.length)));
    expect(Math.abs(std / 0.2 - 1)).toBeLessThan(0.03);
    expect(sum.get('w')!.data[0]).toBe(0.5);
  });
});

describe('distributedNoiseShare', () => {
  it('n Skellam shares sum to the aggregate variance', () => {
    const n = 4;
    const v = perClientVariance(400, n);
    const len = 10_000;
    const total = new Float64Array(len);
    for (let c = 0; c < n; c++) {
      const share = distributedNoiseShare({ noise: 'skellam', perClientVariance: v, length: len, rng: seededRandomBytes(`c${c}`) });
      share.forEach((x, i) => (total[i] = total[i]! + x));
    }
    let s2 = 0;
    for (const x of total) s2 += x * x;
    expect(Math.abs(s2 / len / 400 - 1)).toBeLessThan(4 * Math.sqrt(2 / len));
  });

  it('discrete Gaussian shares are integers with the requested variance', () => {
    const share = distributedNoiseShare({ noise: 'discrete_gaussian', perClientVariance: 50, length: 10_000, rng: seededRandomBytes('dg') });
    let s2 = 0;
    for (const x of share) s2 += x * x;
    expect(Math.abs(s2 / share.length / 50 - 1)).toBeLessThan(4 * Math.sqrt(2 / share.length));
  });

  it('rejects an unknown noise', () => {
    expect(() => distributedNoiseShare({ noise: 'laplace' as never, perClientVariance: 1, length: 1, rng: seededRandomBytes(1) })).toThrow(/noise/);
  });
});
