import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { samplePoisson, sampleSkellam } from './samplers.js';

/** log of the Poisson pmf, via a direct sum of logs (exact enough for the reference). */
function logPoissonPmf(mu: number, k: number): number {
  let s = -mu + k * Math.log(mu);
  for (let i = 2; i <= k; i++) s -= Math.log(i);
  return s;
}

function stats(xs: Int32Array): { mean: number; variance: number } {
  let s = 0;
  for (const x of xs) s += x;
  const mean = s / xs.length;
  let v = 0;
  for (const x of xs) v += (x - mean) ** 2;
  return { mean, variance: v / (xs.length - 1) };
}

describe('exact Poisson for large rates (rejection from a rational two-sided geometric)', () => {
  it('Poisson(40.3) matches the pmf at the mode, in both tails, and its mean and variance', () => {
    const n = 40_000;
    const mu = 40.3;
    const xs = samplePoisson(mu, n, seededRandomBytes('p40'));
    const { mean, variance } = stats(xs);
    expect(Math.abs(mean - mu)).toBeLessThan(4 * Math.sqrt(mu / n));
    expect(Math.abs(variance / mu - 1)).toBeLessThan(4 * Math.sqrt((2 + 1 / mu) / n));
    for (const k of [40, 30, 52]) {
      const p = Math.exp(logPoissonPmf(mu, k));
      const f = xs.filter((x) => x === k).length / n;
      expect(Math.abs(f - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    }
    let upper = 0;
    for (let k = 60; k < 200; k++) upper += Math.exp(logPoissonPmf(mu, k));
    const fu = xs.filter((x) => x >= 60).length / n;
    expect(Math.abs(fu - upper)).toBeLessThan(4 * Math.sqrt(upper / n) + 2 / n);
    expect(xs.every((x) => x >= 0)).toBe(true);
  });

  it('the small-rate and large-rate paths agree at the threshold (Poisson(15.9) vs Poisson(16.1))', () => {
    const n = 20_000;
    const a = stats(samplePoisson(15.9, n, seededRandomBytes('a')));
    const b = stats(samplePoisson(16.1, n, seededRandomBytes('b')));
    expect(Math.abs(a.mean - 15.9)).toBeLessThan(4 * Math.sqrt(15.9 / n));
    expect(Math.abs(b.mean - 16.1)).toBeLessThan(4 * Math.sqrt(16.1 / n));
  });

  it('Skellam with a realistic secure-aggregation variance (mu = 5e4) is fast and has variance 2 mu', () => {
    const n = 5_000;
    const mu = 5e4;
    const { mean, variance } = stats(sampleSkellam(mu, n, seededRandomBytes('sk-big')));
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt((2 * mu) / n));
    expect(Math.abs(variance / (2 * mu) - 1)).toBeLessThan(4 * Math.sqrt(2 / n));
  });
});
