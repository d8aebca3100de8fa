import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelativeError, nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native reduction tests skipped: ${skip}`);

const OPS: Record<string, (x: tf.Tensor, axis: number | number[] | undefined, keepDims: boolean) => tf.Tensor> = {
  Sum: tf.sum,
  Mean: tf.mean,
  Max: tf.max,
  Min: tf.min,
  Prod: tf.prod,
};

/** Inner, outer, middle, split and all-axes reductions over a rank-4 tensor with a unit axis. */
const AXES: (number | number[] | undefined)[] = [-1, 0, [0, 1], 1, [1, 2], [0, 3], [0, 2], [1, 3], undefined, 2];

describe.skipIf(skip !== null)('native reductions', () => {
  for (const [name, op] of Object.entries(OPS)) {
    for (const axis of AXES) {
      for (const keepDims of [false, true]) {
        it(`${name} over axis ${JSON.stringify(axis)} (keepDims=${keepDims}) matches the pure kernel`, async () => {
          const [lo, hi] = name === 'Prod' ? [0.8, 1.25] : [-1, 1];
          const { native, pure } = await nativeAndPure(() => {
            const y = op(seededTensor(`${name}`, [3, 4, 1, 5], lo, hi), axis, keepDims);
            return [y, tf.tensor1d(y.shape)];
          });
          expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
          expect(Array.from(native[1]!)).toEqual(Array.from(pure[1]!));
        });
      }
    }
  }

  it('Sum over 10^5 elements stays within float32 rounding of the pure kernel', async () => {
    const { native, pure } = await nativeAndPure(() => tf.sum(seededTensor('big', [100_003], 0, 1)));
    expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
  });

  it('Max propagates NaN like the pure kernel', async () => {
    const { native, pure } = await nativeAndPure(() => tf.max(tf.tensor2d([[1, NaN, 3], [4, 5, 6]]), -1));
    expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
  });
});

describe.skipIf(skip !== null)('native softmax', () => {
  for (const shape of [[7], [4, 9], [2, 3, 50]]) {
    it(`matches the pure kernel on [${shape}], and so does its gradient`, async () => {
      const { native, pure } = await nativeAndPure(() => {
        const x = seededTensor(`sm${shape}`, shape, -8, 8);
        const w = seededTensor(`smw${shape}`, shape);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), w)))(x);
        return [tf.softmax(x), g];
      });
      native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(1e-5));
    });
  }
});
