import { describe, expect, it } from 'vitest';
import { binomialUpperTail, chooseSecAggParams } from './params.js';

describe('binomialUpperTail', () => {
  it('matches closed forms', () => {
    expect(binomialUpperTail(10, 0.5, 0)).toBe(1);
    expect(binomialUpperTail(10, 0.5, 10)).toBeCloseTo(2 ** -10, 15);
    expect(binomialUpperTail(3, 0.2, 2)).toBeCloseTo(3 * 0.04 * 0.8 + 0.008, 12);
  });
});

describe('chooseSecAggParams', () => {
  it('uses a neighbourhood much smaller than the cohort for large n', () => {
    const p = chooseSecAggParams({ n: 1000, dropoutFraction: 0.1, corruptFraction: 0.05 });
    expect(p.full).toBe(false);
    expect(p.k).toBeLessThan(200);
    expect(p.k % 2).toBe(0);
    expect(p.securityFailureProb).toBeLessThanOrEqual(2 ** -40);
    expect(p.correctnessFailureProb).toBeLessThanOrEqual(2 ** -20);
  });

  it('grows k slowly with n (logarithmic overhead)', () => {
    const k100 = chooseSecAggParams({ n: 100, dropoutFraction: 0.1 }).k;
    const k10000 = chooseSecAggParams({ n: 10_000, dropoutFraction: 0.1 }).k;
    expect(k10000).toBeLessThan(2 * k100);
  });

  it('needs t > k/2 against a malicious server even without corrupted clients', () => {
    const p = chooseSecAggParams({ n: 200, dropoutFraction: 0.2 });
    expect(2 * p.t).toBeGreaterThan(p.k);
  });

  it('falls back to full SecAgg for small cohorts and reports the achieved failure probability', () => {
    const p = chooseSecAggParams({ n: 8, dropoutFraction: 0.3 });
    expect(p).toMatchObject({ k: 7, t: 4, full: true });
    expect(p.correctnessFailureProb).toBeGreaterThan(0.01);
  });

  it('rejects impossible inputs', () => {
    expect(() => chooseSecAggParams({ n: 2, dropoutFraction: 0 })).toThrow(/n must be/);
    expect(() => chooseSecAggParams({ n: 10, dropoutFraction: 1 })).toThrow(/dropoutFraction/);
    expect(() => chooseSecAggParams({ n: 10, dropoutFraction: 0.1, corruptFraction: 0.6 })).toThrow(/corruptFraction/);
  });
});
