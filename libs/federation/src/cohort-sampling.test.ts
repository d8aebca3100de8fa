import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { drawCohort } from './cohort-sampling.js';

const pop = (n: number): string[] => Array.from({ length: n }, (_, i) => `c${String(i).padStart(4, '0')}`);

describe('drawCohort', () => {
  it('without clientsPerRound takes everyone and records mode all, rate 1', () => {
    const { cohort, sampling } = drawCohort(pop(5), undefined, 'uniform', seededRandomBytes(1), 2);
    expect(cohort).toEqual(pop(5));
    expect(sampling).toEqual({ mode: 'all', population: 5, expectedCohort: 5, rate: 1, drawn: 5 });
  });

  it('uniform draws exactly k distinct live clients, and different subsets across draws', () => {
    const rng = seededRandomBytes(2);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { cohort, sampling } = drawCohort(pop(200), 20, 'uniform', rng, 2);
      expect(cohort).toHaveLength(20);
      expect(new Set(cohort).size).toBe(20);
      for (const c of cohort) expect(pop(200)).toContain(c);
      expect(sampling).toEqual({ mode: 'uniform', population: 200, expectedCohort: 20, rate: 0.1, drawn: 20 });
      seen.add(cohort.join());
    }
    expect(seen.size).toBe(20);
  });

  it('uniform with a fraction never goes below minClients', () => {
    const { cohort } = drawCohort(pop(10), 0.1, 'uniform', seededRandomBytes(3), 3);
    expect(cohort).toHaveLength(3);
  });

  it('poisson includes each client independently with q = k / population (mean and spread of the size)', () => {
    const rng = seededRandomBytes(4);
    const sizes: number[] = [];
    const hits = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const { cohort, sampling } = drawCohort(pop(500), 50, 'poisson', rng, 2);
      expect(sampling).toMatchObject({ mode: 'poisson', population: 500, expectedCohort: 50, rate: 0.1, drawn: cohort.length });
      sizes.push(cohort.length);
      for (const c of cohort) hits.set(c, (hits.get(c) ?? 0) + 1);
    }
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    const variance = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (sizes.length - 1);
    // Binomial(500, 0.1): mean 50, variance 45; the mean of 400 draws has sd 0.34, so +-2 is > 5 sd.
    expect(Math.abs(mean - 50)).toBeLessThan(2);
    expect(variance).toBeGreaterThan(30); // a fixed-size draw would have variance 0
    expect(variance).toBeLessThan(62);
    // Every client is drawn about 40 times (Binomial(400, 0.1), sd 6): none never, none always.
    for (const c of pop(500)) expect(hits.get(c) ?? 0).toBeGreaterThan(10);
  });

  it('poisson with a fraction uses it as q', () => {
    const { sampling } = drawCohort(pop(100), 0.25, 'poisson', seededRandomBytes(5), 1);
    expect(sampling.rate).toBe(0.25);
    expect(sampling.expectedCohort).toBe(25);
  });

  it('refuses a non-positive clientsPerRound', () => {
    expect(() => drawCohort(pop(3), 0, 'uniform', seededRandomBytes(6), 1)).toThrow(/clientsPerRound/);
  });
});
