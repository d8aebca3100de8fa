import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { addGaussianOnGrid, gaussianOnGrid, sampleDiscreteGaussian, samplePoisson, sampleSkellam } from './samplers.js';

function moments(xs: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  const mean = s / xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i]! - mean) ** 2;
  return { mean, variance: v / (xs.length - 1) };
}

function frequency(xs: ArrayLike<number>, pred: (x: number) => boolean): number {
  let c = 0;
  for (let i = 0; i < xs.length; i++) if (pred(xs[i]!)) c++;
  return c / xs.length;
}

/** Discrete Gaussian pmf at k, normalised over |k| <= 200. */
function dgPmf(sigma2: number, k: number): number {
  let z = 0;
  for (let j = -200; j <= 200; j++) z += Math.exp((-j * j) / (2 * sigma2));
  return Math.exp((-k * k) / (2 * sigma2)) / z;
}

describe('sampleDiscreteGaussian (CKS 2020 Algorithm 3)', () => {
  const n = 40_000;
  const sigma2 = 9;
  const xs = sampleDiscreteGaussian(sigma2, n, seededRandomBytes('dg-9'));

  it('has mean 0 and variance sigma^2 within 4 standard errors', () => {
    const { mean, variance } = moments(xs);
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(sigma2 / n));
    // Var of the sample variance ~ 2 sigma^4 / n.
    expect(Math.abs(variance - sigma2)).toBeLessThan(4 * Math.sqrt((2 * sigma2 * sigma2) / n));
  });

  it('matches the pmf at 0, 1, 3 and 6 within 4 standard errors', () => {
    for (const k of [0, 1, 3, 6]) {
      const p = dgPmf(sigma2, k);
      const f = frequency(xs, (x) => x === k);
      expect(Math.abs(f - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    }
  });

  it('has Gaussian tails: P(|X| >= 4 sigma) is tiny and P(|X| >= 2 sigma) ~ 5%', () => {
    let pTail2 = 0;
    let pTail4 = 0;
    for (let k = -200; k <= 200; k++) {
      if (Math.abs(k) >= 6) pTail2 += dgPmf(sigma2, k);
      if (Math.abs(k) >= 12) pTail4 += dgPmf(sigma2, k);
    }
    const f2 = frequency(xs, (x) => Math.abs(x) >= 6);
    expect(Math.abs(f2 - pTail2)).toBeLessThan(4 * Math.sqrt((pTail2 * (1 - pTail2)) / n));
    expect(frequency(xs, (x) => Math.abs(x) >= 12)).toBeLessThan(pTail4 + 4 * Math.sqrt(pTail4 / n) + 1 / n);
  });

  it('is reproducible from a seed and works for fractional and large variances', () => {
    expect(sampleDiscreteGaussian(2.5, 50, seededRandomBytes(1))).toEqual(sampleDiscreteGaussian(2.5, 50, seededRandomBytes(1)));
    const big = sampleDiscreteGaussian(1e8, 4000, seededRandomBytes('big'));
    const { variance } = moments(big);
    expect(Math.abs(variance / 1e8 - 1)).toBeLessThan(4 * Math.sqrt(2 / 4000));
  });

  it('rejects a non-positive variance naming the argument', () => {
    expect(() => sampleDiscreteGaussian(0, 1, seededRandomBytes(1))).toThrow(/sigma2/);
    expect(() => sampleDiscreteGaussian(1, -1, seededRandomBytes(1))).toThrow(RangeError);
  });
});

describe('samplePoisson and sampleSkellam (exact Poisson draws)', () => {
  it('Poisson(0.7) matches P(0) = e^-0.7 and P(2)', () => {
    const n = 30_000;
    const xs = samplePoisson(0.7, n, seededRandomBytes('p07'));
    const p0 = Math.exp(-0.7);
    const p2 = (Math.exp(-0.7) * 0.49) / 2;
    expect(Math.abs(frequency(xs, (x) => x === 0) - p0)).toBeLessThan(4 * Math.sqrt((p0 * (1 - p0)) / n));
    expect(Math.abs(frequency(xs, (x) => x === 2) - p2)).toBeLessThan(4 * Math.sqrt((p2 * (1 - p2)) / n));
  });

  it('Poisson(5.5) has mean and variance 5.5', () => {
    const n = 20_000;
    const { mean, variance } = moments(samplePoisson(5.5, n, seededRandomBytes('p55')));
    expect(Math.abs(mean - 5.5)).toBeLessThan(4 * Math.sqrt(5.5 / n));
    expect(Math.abs(variance - 5.5)).toBeLessThan(0.25);
  });

  it('Skellam(mu) has mean 0, variance 2 mu and symmetric tails', () => {
    const n = 20_000;
    const mu = 4;
    const xs = sampleSkellam(mu, n, seededRandomBytes('sk4'));
    const { mean, variance } = moments(xs);
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt((2 * mu) / n));
    expect(Math.abs(variance - 2 * mu)).toBeLessThan(4 * Math.sqrt((2 * (2 * mu) ** 2 + 2 * mu) / n));
    const hi = frequency(xs, (x) => x >= 6);
    const lo = frequency(xs, (x) => x <= -6);
    expect(Math.abs(hi - lo)).toBeLessThan(4 * Math.sqrt((hi + lo) / n));
  });
});

describe('gaussianOnGrid (discrete Gaussian on gridStep * Z)', () => {
  it('lies on the grid and has standard deviation sigma', () => {
    const sigma = 0.37;
    const step = sigma / 1024;
    const xs = gaussianOnGrid(sigma, 20_000, seededRandomBytes('grid'), step);
    for (let i = 0; i < 100; i++) expect(Math.abs(xs[i]! / step - Math.round(xs[i]! / step))).toBeLessThan(1e-6);
    const { mean, variance } = moments(xs);
    expect(Math.abs(mean)).toBeLessThan(4 * sigma * Math.sqrt(1 / 20_000));
    expect(Math.abs(variance / (sigma * sigma) - 1)).toBeLessThan(4 * Math.sqrt(2 / 20_000));
  });

  it('addGaussianOnGrid rounds the values to the grid before adding noise', () => {
    const out = addGaussianOnGrid([0.123456789, -2], 1, seededRandomBytes('add'), 1 / 64);
    for (const v of out) expect(Number.isInteger(v * 64)).toBe(true);
  });
});
