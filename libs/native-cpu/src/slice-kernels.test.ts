import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';
import { sliceBox } from './slice-kernels.js';
import { nativeAddon } from './native-binding.js';
import { registerNativeKernels, unregisterNativeKernels } from './register.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native slice tests skipped: ${skip}`);

describe('sliceBox', () => {
  it('copies an inner column block of a matrix', () => {
    const x = Float32Array.from({ length: 12 }, (_, i) => i);
    expect(Array.from(sliceBox(x, [3, 4], [1, 1], [2, 2]))).toEqual([5, 6, 9, 10]);
  });

  it('copies a whole tensor when the box is the tensor', () => {
    const x = Float32Array.from({ length: 6 }, (_, i) => i);
    expect(Array.from(sliceBox(x, [2, 3], [0, 0], [2, 3]))).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe.skipIf(skip !== null)('Slice and SplitV kernels', () => {
  const CASES: [number[], number[], number[]][] = [
    [[6, 9], [0, 3], [6, 3]],
    [[4, 5, 6], [1, 0, 2], [2, 5, 3]],
    [[4, 5, 6], [1, 2, 0], [3, 2, 6]],
    [[2, 3, 4, 5], [0, 1, 1, 0], [2, 1, 2, 5]],
    [[7], [2], [4]],
  ];
  for (const [shape, begin, size] of CASES) {
    it(`slice of [${shape}] at [${begin}] size [${size}] matches the pure kernel`, async () => {
      const { native, pure } = await nativeAndPure(() => tf.slice(seededTensor(`s${shape}`, shape), begin, size));
      expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
    });
  }

  for (const [splits, axis] of [[3, 1], [[2, -1, 3], 1], [2, 0], [[1, 3], -1]] as [number | number[], number][]) {
    it(`split into ${JSON.stringify(splits)} along axis ${axis} matches the pure kernel, with its gradient`, async () => {
      const { native, pure } = await nativeAndPure(() => {
        const x = seededTensor('split', [4, 9, 4]);
        const parts = tf.split(x, splits, axis);
        const g = tf.grad((t: tf.Tensor) => tf.addN(tf.split(t, splits, axis).map((p, i) => tf.mul(tf.sum(p), i + 1))))(x);
        return [...parts, g];
      });
      native.forEach((v, i) => expect(Array.from(v)).toEqual(Array.from(pure[i]!)));
    });
  }

  const CONCATS: [number[][], number][] = [
    [[[2, 3], [2, 5]], 1],
    [[[2, 3, 4], [1, 3, 4]], 0],
    [[[2, 3, 1], [2, 3, 2], [2, 3, 3]], -1],
    [[[4], [0], [2]], 0],
  ];
  for (const [shapes, axis] of CONCATS) {
    it(`concat of ${JSON.stringify(shapes)} along axis ${axis} matches the pure kernel`, async () => {
      const { native, pure } = await nativeAndPure(() => tf.concat(shapes.map((s, i) => seededTensor(`c${i}${s}`, s)), axis));
      expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
    });
  }

  it('gather of embedding rows (with repeats, 2-d indices) matches the pure kernel', async () => {
    const { native, pure } = await nativeAndPure(() =>
      tf.gather(seededTensor('emb', [10, 6]), tf.tensor2d([[3, 0, 9], [3, 3, 1]], [2, 3], 'int32')),
    );
    expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
  });

  it('gather along axis 1 falls back to the pure kernel', async () => {
    const { native, pure } = await nativeAndPure(() => tf.gather(seededTensor('g1', [3, 5]), tf.tensor1d([4, 0], 'int32'), 1));
    expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
  });

  it('copies the same boxes with the native run copier as run by run in JS', () => {
    const x = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i);
    for (const [begin, size] of [[[0, 1, 1, 0], [2, 1, 2, 5]], [[1, 0, 1, 2], [1, 3, 3, 2]], [[0, 0, 0, 0], [2, 3, 4, 5]], [[1, 2, 3, 4], [1, 1, 1, 1]]]) {
      expect(Array.from(sliceBox(x, [2, 3, 4, 5], begin!, size!, nativeAddon()))).toEqual(Array.from(sliceBox(x, [2, 3, 4, 5], begin!, size!)));
    }
  });

  it('gather names an index outside the table', async () => {
    await tf.setBackend('cpu');
    registerNativeKernels(tf);
    try {
      expect(() => tf.gather(tf.zeros([4, 3]), tf.tensor1d([1, 4], 'int32'))).toThrow(/index 4 at position 1 is outside \[0, 4\)/);
    } finally {
      unregisterNativeKernels(tf);
    }
  });
});
