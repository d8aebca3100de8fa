import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelativeError, nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';
import { BINARY_KERNELS, UNARY_KERNELS } from './elementwise-kernels.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native element-wise tests skipped: ${skip}`);

const BINARY: Record<keyof typeof BINARY_KERNELS, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = {
  Add: tf.add,
  Sub: tf.sub,
  Multiply: tf.mul,
  RealDiv: tf.div,
  SquaredDifference: tf.squaredDifference,
  Maximum: tf.maximum,
  Minimum: tf.minimum,
  Pow: (a, b) => tf.pow(tf.abs(a), b),
};

/** Shape pairs covering same-shape, scalar, bias-like, per-row, middle-axis and two-sided broadcasts. */
const SHAPES: [number[], number[]][] = [
  [[4, 5], [4, 5]],
  [[4, 5], []],
  [[], [3, 2]],
  [[2, 3, 8], [8]],
  [[2, 3, 8], [2, 3, 1]],
  [[2, 3, 8], [3, 1]],
  [[4, 1, 6], [1, 5, 1]],
  [[2, 1, 3, 1, 2], [4, 1, 5, 1]],
];

describe.skipIf(skip !== null)('native binary kernels', () => {
  for (const [name, op] of Object.entries(BINARY)) {
    for (const [sa, sb] of SHAPES) {
      it(`${name} matches the pure kernel for [${sa}] with [${sb}]`, async () => {
        const lo = name === 'RealDiv' ? 0.5 : -1;
        const { native, pure } = await nativeAndPure(() =>
          op(seededTensor(`${name}a${sa}`, sa), seededTensor(`${name}b${sb}`, sb, lo, 2)),
        );
        expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
      });
    }
  }

  it('Pow with the exponents 2, 3, 0.5 and 1 matches Math.pow', async () => {
    for (const e of [2, 3, 0.5, 1]) {
      const { native, pure } = await nativeAndPure(() => tf.pow(seededTensor('pow', [33], 0, 3), tf.scalar(e)));
      expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-6);
    }
  });

  it('leaves int32 arithmetic to the pure kernel', async () => {
    const { native, pure } = await nativeAndPure(() => tf.cast(tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.scalar(4, 'int32')), 'float32'));
    expect(Array.from(native[0]!)).toEqual(Array.from(pure[0]!));
  });
});

const UNARY: Record<keyof typeof UNARY_KERNELS, [(x: tf.Tensor) => tf.Tensor, number, number]> = {
  Exp: [tf.exp, -5, 5],
  Log: [tf.log, 0.01, 10],
  Tanh: [tf.tanh, -4, 4],
  Sqrt: [tf.sqrt, 0, 9],
  Rsqrt: [tf.rsqrt, 0.01, 9],
  Square: [tf.square, -3, 3],
  Neg: [tf.neg, -3, 3],
  Reciprocal: [tf.reciprocal, 0.1, 3],
  Sigmoid: [tf.sigmoid, -6, 6],
  Relu: [tf.relu, -3, 3],
  Abs: [tf.abs, -3, 3],
};

describe.skipIf(skip !== null)('native unary kernels', () => {
  for (const [name, [op, lo, hi]] of Object.entries(UNARY)) {
    it(`${name} matches the pure kernel`, async () => {
      const { native, pure } = await nativeAndPure(() => op(seededTensor(name, [3, 37], lo, hi)));
      expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
    });
  }
});
