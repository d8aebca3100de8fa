import { describe, expect, it } from 'vitest';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { fwht, paddedDimension, rotate, unrotate } from './hadamard.js';

const norm = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));

describe('randomized Hadamard rotation', () => {
  const seed = seededRandomBytes('rot')(32);

  it('pads to the next power of two', () => {
    expect([1, 2, 3, 1000, 1024, 1025].map(paddedDimension)).toEqual([1, 2, 4, 1024, 1024, 2048]);
  });

  it('computes the orthonormal Walsh-Hadamard transform of a small vector', () => {
    const x = new Float64Array([1, 0, 0, 0]);
    fwht(x);
    expect(Array.from(x)).toEqual([0.5, 0.5, 0.5, 0.5]);
    const y = new Float64Array([1, 2, 3, 4]);
    fwht(y);
    expect(Array.from(y)).toEqual([5, -1, -2, 0]);
  });

  it('keeps the L2 norm and inverts exactly (up to float rounding)', () => {
    const rng = seededRandomBytes('rot-x');
    const x = Float64Array.from({ length: 1000 }, () => uniform01(rng) - 0.5);
    const y = rotate(x, seed);
    expect(y).toHaveLength(1024);
    expect(norm(y)).toBeCloseTo(norm(x), 10);
    const back = unrotate(y, seed, 1000);
    for (let i = 0; i < 1000; i++) expect(back[i]).toBeCloseTo(x[i]!, 12);
  });

  it('flattens a spike: every rotated coordinate has magnitude ||x|| / sqrt(D)', () => {
    const x = new Float64Array(256);
    x[17] = 3;
    const y = rotate(x, seed);
    for (const v of y) expect(Math.abs(v)).toBeCloseTo(3 / 16, 12);
  });

  it('a different seed gives a different rotation', () => {
    const x = Float64Array.from({ length: 8 }, (_, i) => i);
    expect(rotate(x, seededRandomBytes('other')(32))).not.toEqual(rotate(x, seed));
  });
});
