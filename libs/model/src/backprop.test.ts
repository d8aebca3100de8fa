import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';
import { valueAndGradsFrugal } from './backprop.js';
import { crossEntropy } from './loss.js';

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

/** A small net with fan-out, identity ops, a frozen input and a custom-gradient loss. */
function net(w1: tf.Tensor, w2: tf.Tensor, frozen: tf.Tensor, x: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar {
  const h = tf.tidy(() => tf.tanh(tf.add(tf.matMul(x, w1 as tf.Tensor2D), frozen)));
  const skip = tf.reshape(tf.clone(h), h.shape); // Identity-like ops hand dy straight back
  const z = tf.add(tf.matMul(h, w2 as tf.Tensor2D), tf.matMul(skip, w2 as tf.Tensor2D));
  return tf.add(crossEntropy(z as tf.Tensor2D, y), tf.mul(tf.sum(tf.square(w1)), 0.01)) as tf.Scalar;
}

describe('valueAndGradsFrugal', () => {
  it('gives the value and gradients of tf.valueAndGrads', async () => {
    const w1 = tf.tensor2d([0.1, -0.2, 0.3, 0.4, -0.5, 0.6], [2, 3]);
    const w2 = tf.tensor2d([0.2, -0.1, 0.05, 0.3, -0.4, 0.1, 0.0, 0.25, -0.3, 0.15, 0.2, -0.05], [3, 4]);
    const frozen = tf.tensor1d([0.01, -0.02, 0.03]);
    const x = tf.tensor2d([1, 2, -1, 0.5, 0.3, -0.7], [3, 2]);
    const y = tf.tensor1d([0, 3, 1], 'int32');
    const f = (a: tf.Tensor, b: tf.Tensor) => net(a, b, frozen, x, y);
    const ref = tf.valueAndGrads(f)([w1, w2]);
    const got = valueAndGradsFrugal(f)([w1, w2]);
    expect((await got.value.data())[0]).toBeCloseTo((await ref.value.data())[0]!, 6);
    for (let i = 0; i < 2; i++) {
      const [g, r] = [await got.grads[i]!.data(), await ref.grads[i]!.data()];
      expect(got.grads[i]!.shape).toEqual(ref.grads[i]!.shape);
      r.forEach((v, j) => expect(g[j]).toBeCloseTo(v, 6));
    }
    tf.dispose([ref.value, ...ref.grads, got.value, ...got.grads, w1, w2, frozen, x, y]);
  });

  it('leaves no tensors behind across repeated steps', () => {
    const w = tf.variable(tf.tensor2d([0.1, -0.2, 0.3, 0.4, -0.5, 0.6], [2, 3]));
    const w2 = tf.variable(tf.tensor2d([0.2, -0.1, 0.05, 0.3, -0.4, 0.1, 0.0, 0.25, -0.3], [3, 3]));
    const frozen = tf.tensor1d([0.01, -0.02, 0.03]);
    const x = tf.tensor2d([1, 2, -1, 0.5], [2, 2]);
    const y = tf.tensor1d([0, 2], 'int32');
    const step = (): void => {
      const { value, grads } = valueAndGradsFrugal((a, b) => net(a!, b!, frozen, x, y))([w, w2]);
      tf.dispose([value, ...grads]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, w2, frozen, x, y]);
  });

  it('rejects an empty list of xs and a function that does not depend on them', () => {
    const w = tf.scalar(1);
    const c = tf.scalar(2);
    expect(() => valueAndGradsFrugal(() => tf.mul(c, 3) as tf.Scalar)([])).toThrow(/xs must hold at least one tensor, received 0/);
    expect(() => valueAndGradsFrugal(() => tf.mul(c, 3) as tf.Scalar)([w])).toThrow(/y does not depend on xs/);
    tf.dispose([w, c]);
  });
});
