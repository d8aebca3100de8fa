import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';
import { checkPerm } from './transpose-kernel.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native transpose tests skipped: ${skip}`);

const CASES: [number[], number[]][] = [
  [[5, 7], [1, 0]],
  [[70, 45], [1, 0]],
  [[2, 3, 4, 5], [0, 2, 1, 3]],
  [[2, 3, 4, 5], [0, 1, 3, 2]],
  [[2, 3, 4, 5], [3, 2, 1, 0]],
  [[2, 3, 4, 5], [1, 0, 2, 3]],
  [[2, 1, 4, 5], [2, 0, 3, 1]],
  [[3, 4, 5], [2, 0, 1]],
  [[3, 4, 5], [0, 1, 2]],
  [[2, 3, 1, 4, 2, 3], [5, 3, 1, 0, 2, 4]],
];

describe.skipIf(skip !== null)('native transpose', () => {
  for (const [shape, perm] of CASES) {
    it(`matches the pure kernel for [${shape}] with perm [${perm}]`, async () => {
      const { native, pure } = await nativeAndPure(() => tf.transpose(seededTensor(`t${shape}${perm}`, shape), perm));
      expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
    });
  }
});

describe('checkPerm', () => {
  it('rejects a repeated axis, naming the permutation', () => {
    expect(() => checkPerm([0, 0, 1], 3)).toThrow(/permutation of 0..2, received \[0,0,1\]/);
  });

  it('rejects a permutation of the wrong length', () => {
    expect(() => checkPerm([1, 0], 3)).toThrow(RangeError);
  });
});
