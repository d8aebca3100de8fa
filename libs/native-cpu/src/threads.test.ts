import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelativeError, nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';
import { loadNativeCpu } from './native-binding.js';
import { geluTanh, layerNorm, sparseSoftmaxCrossEntropy } from './fused-ops.js';

const skip = nativeSkipReason();
if (skip) console.warn(`threaded kernel tests skipped: ${skip}`);

// Large enough (> 2 x 65536 elements of work; memory-bound element-wise ops > 2 x 2^20) that the
// kernels split across threads. The pure-JS reference on 2.4M elements takes seconds idle and minutes on a
// loaded machine: the timeout bounds a hang, not the speed.
describe.skipIf(skip !== null)('kernels split across 3 threads', { timeout: 600_000 }, () => {
  it('match the pure kernels on large broadcast, unary, softmax and fused ops', async () => {
    expect(loadNativeCpu({ numThreads: 3 }).threads).toBe(3);
    const { native, pure } = await nativeAndPure(() => {
      const x = seededTensor('tx', [300, 1000], -4, 4);
      const bias = seededTensor('tb', [1000]);
      const rowScale = seededTensor('tr', [300, 1], 0.5, 2);
      const labels = tf.tensor1d(Array.from({ length: 300 }, (_, i) => (i * 37) % 1000), 'int32');
      const w = seededTensor('tw', [300, 1000]);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(geluTanh(layerNorm(tf.add(a, b), tf.ones([1000]) as tf.Tensor1D, tf.zeros([1000]) as tf.Tensor1D)), w)),
      )([x, bias]);
      return [
        tf.add(x, bias),
        tf.mul(x, rowScale),
        tf.sub(tf.scalar(1), x),
        tf.exp(x),
        tf.softmax(x),
        tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.softmax(a), w)))(x),
        sparseSoftmaxCrossEntropy(x, labels),
        tf.grad((a: tf.Tensor) => tf.sum(sparseSoftmaxCrossEntropy(a, labels)))(x),
        ...g,
      ];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!), `output ${i}`).toBeLessThan(2e-5));
  });

  it('match the pure kernels on memory-bound element-wise ops large enough to be split (> 2^20 elements per thread)', async () => {
    expect(loadNativeCpu({ numThreads: 3 }).threads).toBe(3);
    const { native, pure } = await nativeAndPure(() => {
      const x = seededTensor('cx', [2400, 1024], -4, 4);
      const bias = seededTensor('cb', [1024]);
      const rowScale = seededTensor('cr', [2400, 1], 0.5, 2);
      return [tf.add(x, bias), tf.mul(x, rowScale), tf.sub(x, x), tf.square(x), tf.relu(x)];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!), `output ${i}`).toBeLessThan(1e-6));
  });
});
