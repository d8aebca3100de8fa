import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';

describe('backend ladder', () => {
  it('rejects an unknown backend name, listing the rungs', async () => {
    await expect(initBackend({ backend: 'gpu' })).rejects.toThrow(/backend must be one of tfjs-node-gpu, tfjs-node, native, wasm, cpu, received "gpu"/);
  });

  it('fails loudly when a forced optional backend is not installed', async () => {
    await expect(initBackend({ backend: 'tfjs-node-gpu' })).rejects.toThrow(/backend "tfjs-node-gpu" is not available/);
  });

  it('starts wasm with gradients registered and transposed matmuls rewritten to explicit transposes', async () => {
    expect((await initBackend({ backend: 'wasm' })).name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const a = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]);
    const b = tf.tensor3d([1, -1, 2, 0, 0.5, 3, 1, 1, 2, 2, -2, 1], [2, 2, 3]);
    const want = tf.matMul(tf.transpose(a, [0, 2, 1]), tf.transpose(b, [0, 2, 1]));
    const got = tf.matMul(a, b, true, true);
    expect(got.shape).toEqual([2, 2, 2]);
    expect(await got.data()).toEqual(await want.data());
    const x = tf.transpose(a, [0, 2, 1]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.matMul(v, b, false, true)))(x); // dL/dx = 1 @ b
    const gWant = tf.matMul(tf.onesLike(tf.matMul(x, b, false, true)), b);
    expect(await g.data()).toEqual(await gWant.data());
    tf.dispose([a, b, want, got, x, g, gWant]);
  });
});
