import { describe, expect, it } from 'vitest';
import { addScaledNamed, cloneNamed, assertSameLayout, findNonFinite, hostTensor, l2NormNamed, sha256Named, subtractNamed } from './named-tensors.js';
import type { NamedTensors } from './named-tensors.js';

const a: NamedTensors = new Map([['x', hostTensor([2], new Float32Array([3, 4]))]]);

describe('named tensors', () => {
  it('hashes independently of insertion order but sensitive to values', () => {
    const p: NamedTensors = new Map([
      ['a', hostTensor([1], new Float32Array([1]))],
      ['b', hostTensor([1], new Float32Array([2]))],
    ]);
    const q: NamedTensors = new Map([...cloneNamed(p)].reverse());
    expect(sha256Named(p)).toBe(sha256Named(q));
    q.get('a')!.data[0] = 1.0000001;
    expect(sha256Named(p)).not.toBe(sha256Named(q));
  });

  it('computes the global L2 norm', () => {
    expect(l2NormNamed(a)).toBeCloseTo(5, 10);
  });

  it('subtracts and adds back to the original', () => {
    const b: NamedTensors = new Map([['x', hostTensor([2], new Float32Array([1, 1]))]]);
    const d = subtractNamed(a, b);
    expect(Array.from(d.get('x')!.data)).toEqual([2, 3]);
    expect(Array.from(addScaledNamed(b, d).get('x')!.data)).toEqual([3, 4]);
  });

  it('names the tensor whose shape differs', () => {
    const b: NamedTensors = new Map([['x', hostTensor([1, 2], new Float32Array([1, 1]))]]);
    expect(() => assertSameLayout(a, b)).toThrow(/tensor "x" has shape \[1, 2\], expected \[2\]/);
  });

  it('finds NaN and Infinity', () => {
    expect(findNonFinite(a)).toBeUndefined();
    const bad: NamedTensors = new Map([['y', hostTensor([3], new Float32Array([0, Infinity, NaN]))]]);
    expect(findNonFinite(bad)).toEqual({ name: 'y', index: 1 });
  });

  it('rejects data that does not fit the shape', () => {
    expect(() => hostTensor([2, 2], new Float32Array(3))).toThrow(/needs 4 values, received 3/);
  });
});
