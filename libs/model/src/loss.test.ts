import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';
import { crossEntropy, crossEntropySum } from './loss.js';

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

// Row 0: ln 3. Row 1: logsumexp(1, 2, 3) - 3 = ln(e + e^2 + e^3) - 3.
const ROW_LOSSES = [Math.log(3), Math.log(Math.E + Math.E ** 2 + Math.E ** 3) - 3];
const LOGITS = [
  [0, 0, 0],
  [1, 2, 3],
];
const TARGETS = [0, 2];

describe('cross-entropy against integer targets', () => {
  it('gives the mean and the sum of -log softmax(z)[y] over the rows', async () => {
    const z = tf.tensor2d(LOGITS);
    const y = tf.tensor1d(TARGETS, 'int32');
    const mean = crossEntropy(z, y);
    const sum = crossEntropySum(z, y);
    expect((await mean.data())[0]).toBeCloseTo((ROW_LOSSES[0]! + ROW_LOSSES[1]!) / 2, 5);
    expect((await sum.data())[0]).toBeCloseTo(ROW_LOSSES[0]! + ROW_LOSSES[1]!, 5);
    tf.dispose([z, y, mean, sum]);
  });

  it('has gradient (softmax(z) - onehot(y)) / N with respect to the logits', async () => {
    const z = tf.tensor2d(LOGITS);
    const y = tf.tensor1d(TARGETS, 'int32');
    const g = tf.grad((zi: tf.Tensor) => crossEntropy(zi as tf.Tensor2D, y))(z);
    const e = [Math.E, Math.E ** 2, Math.E ** 3];
    const s = e[0]! + e[1]! + e[2]!;
    const expected = [(1 / 3 - 1) / 2, 1 / 3 / 2, 1 / 3 / 2, e[0]! / s / 2, e[1]! / s / 2, (e[2]! / s - 1) / 2];
    const got = await g.data();
    expected.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    tf.dispose([z, y, g]);
  });

  it('accepts float targets and still differentiates when a tidy disposed the cast labels', async () => {
    const z = tf.tensor2d(LOGITS);
    const y = tf.tensor1d(TARGETS, 'float32');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.valueAndGrads((zi: tf.Tensor) => tf.tidy(() => crossEntropy(zi as tf.Tensor2D, y)))([z]);
    expect((await value.data())[0]).toBeCloseTo((ROW_LOSSES[0]! + ROW_LOSSES[1]!) / 2, 5);
    expect(grads[0]!.shape).toEqual([2, 3]);
    tf.dispose([value, ...grads]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([z, y]);
  });
});
