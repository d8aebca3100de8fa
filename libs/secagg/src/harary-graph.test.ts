import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { hararyNeighbours, hararyNeighboursOf } from './harary-graph.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => 10 + 3 * i);

describe('hararyNeighbours', () => {
  const seed = seededRandomBytes('graph')(32);

  it('builds a k-regular, symmetric graph without self-loops', () => {
    const g = hararyNeighbours(ids(50), 8, seed);
    for (const [u, nbrs] of g) {
      expect(nbrs).toHaveLength(8);
      expect(new Set(nbrs).size).toBe(8);
      expect(nbrs).not.toContain(u);
      for (const v of nbrs) expect(g.get(v)).toContain(u);
    }
  });

  it('is connected (a Harary graph is k-connected)', () => {
    const g = hararyNeighbours(ids(40), 4, seed);
    const seen = new Set<number>([10]);
    const queue = [10];
    while (queue.length) {
      for (const v of g.get(queue.pop()!)!) {
        if (!seen.has(v)) {
          seen.add(v);
          queue.push(v);
        }
      }
    }
    expect(seen.size).toBe(40);
  });

  it('is deterministic in the seed and changes with it', () => {
    const a = hararyNeighbours(ids(30), 6, seed);
    expect(hararyNeighbours([...ids(30)].reverse(), 6, seed)).toEqual(a);
    expect(hararyNeighbours(ids(30), 6, seededRandomBytes('other')(32))).not.toEqual(a);
  });

  it('is the complete graph for k >= n - 1 (full SecAgg)', () => {
    const g = hararyNeighbours([1, 2, 3, 4], 3, seed);
    expect(g.get(2)).toEqual([1, 3, 4]);
  });

  it('rejects odd k below n - 1 and duplicate ids', () => {
    expect(() => hararyNeighbours(ids(10), 3, seed)).toThrow(/even/);
    expect(() => hararyNeighbours([1, 1, 2], 2, seed)).toThrow(/distinct/);
  });

  it('gives each member the same neighbourhood alone as in the whole graph (sparse and complete)', () => {
    for (const [n, k] of [[50, 8], [31, 30], [7, 2]] as const) {
      const cohort = ids(n);
      const g = hararyNeighbours(cohort, k, seed);
      for (const u of cohort) expect(hararyNeighboursOf([...cohort].reverse(), k, seed, u)).toEqual(g.get(u));
    }
    expect(() => hararyNeighboursOf(ids(50), 8, seed, 11)).toThrow(/not in the cohort/);
    expect(() => hararyNeighboursOf(ids(5), 8, seed, 11)).toThrow(/not in the cohort/);
  });
});
