import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { ExactRandom, isqrt, rationalAtLeast } from './exact-bits.js';

function freq(n: number, f: () => boolean): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (f()) c++;
  return c / n;
}

describe('ExactRandom', () => {
  const n = 40_000;
  const tol = (p: number): number => 4 * Math.sqrt((p * (1 - p)) / n);

  it('Bernoulli(p) is right for small and huge denominators', () => {
    const r = new ExactRandom(seededRandomBytes('bern'));
    expect(Math.abs(freq(n, () => r.bernoulli(1n, 3n)) - 1 / 3)).toBeLessThan(tol(1 / 3));
    const den = 3n * 10n ** 40n;
    expect(Math.abs(freq(n, () => r.bernoulli(2n * 10n ** 40n, den)) - 2 / 3)).toBeLessThan(tol(2 / 3));
    expect(r.bernoulli(0n, 5n)).toBe(false);
    expect(r.bernoulli(5n, 5n)).toBe(true);
  });

  it('Bernoulli(exp(-gamma)) (CKS 2020 Algorithm 1) is right below and above gamma = 1', () => {
    const r = new ExactRandom(seededRandomBytes('bexp'));
    for (const [num, den] of [[1n, 2n], [5n, 2n], [7n, 7n]] as const) {
      const p = Math.exp(-Number(num) / Number(den));
      expect(Math.abs(freq(n, () => r.bernoulliExp(num, den)) - p)).toBeLessThan(tol(p));
    }
  });

  it('uniform integers below n have no bias', () => {
    const r = new ExactRandom(seededRandomBytes('u'));
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[r.below(3)]!++;
    for (const c of counts) expect(Math.abs(c / 30_000 - 1 / 3)).toBeLessThan(4 * Math.sqrt(2 / 9 / 30_000));
    const big = 10n ** 30n;
    for (let i = 0; i < 100; i++) expect(r.belowBig(big) < big).toBe(true);
  });

  it('rationals round up and isqrt is exact', () => {
    const q = rationalAtLeast(0.1);
    expect(Number(q.num) / Number(q.den)).toBeGreaterThanOrEqual(0.1);
    expect(Number(q.num) / Number(q.den) - 0.1).toBeLessThan(2 ** -20);
    expect(isqrt(10n ** 40n)).toBe(10n ** 20n);
    expect(isqrt(10n ** 40n - 1n)).toBe(10n ** 20n - 1n);
    expect(() => rationalAtLeast(-1, 'mu')).toThrow(/mu/);
  });
});

describe('ExactRandom.bernoulliExpOfSquare', () => {
  /** Runs f on two readers of the same bytes; both must answer alike and stop at the same byte. */
  function sameCoins(seed: string, f: (r: ExactRandom) => boolean, g: (r: ExactRandom) => boolean): void {
    const a = new ExactRandom(seededRandomBytes(seed));
    const b = new ExactRandom(seededRandomBytes(seed));
    for (let i = 0; i < 300; i++) expect(f(a)).toBe(g(b));
    expect(a.bits48()).toBe(b.bits48());
  }

  it('reads the same coins as bernoulliExp(diff^2, den) for fine-grid gammas, integer gammas and gammas above 256', () => {
    const den = 2n * 2n ** 32n * 65537n ** 2n; // the DP-SGD grid: sigma^2 = 2^32, t = 2^16 + 1
    const denF = Number(den);
    for (const diff of [0, 1, 123_456_789, 4_294_967_296, 6_074_001_000, 6_074_001_001, 2 ** 36 + 7, 2 ** 40]) {
      sameCoins(`sq-${diff}`, (r) => r.bernoulliExpOfSquare(diff, den, denF), (r) => r.bernoulliExp(BigInt(diff) ** 2n, den));
    }
    // gamma exactly an integer (diff^2 = 4 den'): the remainder is den, not 0.
    const square = 2n ** 50n;
    sameCoins('sq-int', (r) => r.bernoulliExpOfSquare(2 ** 26, square, Number(square)), (r) => r.bernoulliExp(2n ** 52n, square));
  });

  it('has P = exp(-gamma) for a gamma with a fractional part', () => {
    const n = 40_000;
    const tol = (p: number): number => 4 * Math.sqrt((p * (1 - p)) / n);
    const r = new ExactRandom(seededRandomBytes('sq-freq'));
    const den = 2n ** 60n;
    const diff = 2 ** 30 * 0.75; // gamma = 0.5625
    const p = Math.exp(-0.5625);
    expect(Math.abs(freq(n, () => r.bernoulliExpOfSquare(diff, den, Number(den))) - p)).toBeLessThan(tol(p));
  });
});
