import { describe, expect, it } from 'vitest';
import { seededRandomBytes, shuffleInPlace, uniform01, uniformInt } from './random.js';

describe('randomness', () => {
  it('a seeded stream is reproducible and seed-dependent', () => {
    expect(Buffer.from(seededRandomBytes(1)(32))).toEqual(Buffer.from(seededRandomBytes(1)(32)));
    expect(Buffer.from(seededRandomBytes(1)(32))).not.toEqual(Buffer.from(seededRandomBytes(2)(32)));
  });

  it('uniform01 stays in [0, 1) with mean near 1/2', () => {
    const rng = seededRandomBytes('u');
    let s = 0;
    for (let i = 0; i < 20000; i++) {
      const u = uniform01(rng);
      expect(u >= 0 && u < 1).toBe(true);
      s += u;
    }
    expect(s / 20000).toBeGreaterThan(0.49);
    expect(s / 20000).toBeLessThan(0.51);
  });

  it('uniformInt covers every value of a small range evenly', () => {
    const rng = seededRandomBytes('i');
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[uniformInt(rng, 6)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
  });

  it('shuffle is a permutation', () => {
    const xs = shuffleInPlace([...Array(50).keys()], seededRandomBytes('s'));
    expect([...xs].sort((p, q) => p - q)).toEqual([...Array(50).keys()]);
  });
});
