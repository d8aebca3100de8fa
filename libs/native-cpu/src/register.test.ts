import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { loadNativeCpu } from './native-binding.js';
import { registerNativeKernels, unregisterNativeKernels } from './register.js';
import { geluTanh, layerNorm, sparseSoftmaxCrossEntropy } from './fused-ops.js';
import { seededTensor } from './testing.js';

const status = loadNativeCpu();
if (!status.available) console.warn(`native path unavailable, checking the pure fallback only: ${status.reason}`);

/** A miniature training step touching every replaced kernel family. */
function step(w: tf.Variable, x: tf.Tensor, labels: tf.Tensor): number {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const h = geluTanh(layerNorm(tf.matMul(x, w), tf.ones([6]) as tf.Tensor1D, tf.zeros([6]) as tf.Tensor1D));
      const attn = tf.softmax(tf.matMul(h, tf.transpose(h)));
      return tf.mean(sparseSoftmaxCrossEntropy(tf.matMul(attn, h), labels)) as tf.Scalar;
    }, [w]);
    w.assign(tf.sub(w, tf.mul(grads[w.name]!, 0.1)));
    return value.dataSync()[0]!;
  });
}

describe('registration', () => {
  afterEach(() => unregisterNativeKernels(tf));

  it('reports which path is active, and why when it is not the fast one', () => {
    expect(['native-openblas', 'native-loops', 'cpu']).toContain(status.name);
    if (status.name !== 'native-openblas') expect(status.reason).toMatch(/apt-get install/);
  });

  it.skipIf(!status.available)('replaces the hot kernels and restores the pure ones', () => {
    const pureAdd = tf.getKernel('Add', 'cpu')!.kernelFunc;
    const names = registerNativeKernels(tf);
    expect(names).toEqual(expect.arrayContaining(['BatchMatMul', '_FusedMatMul', 'Add', 'Multiply', 'Softmax', 'Transpose', 'Sum']));
    expect(tf.getKernel('Add', 'cpu')!.kernelFunc).not.toBe(pureAdd);
    unregisterNativeKernels(tf);
    expect(tf.getKernel('Add', 'cpu')!.kernelFunc).toBe(pureAdd);
    expect(tf.getKernel('FedloraLayerNorm', 'cpu')).toBeUndefined();
  });

  it('trains with the pure fallback when the native kernels are not registered', async () => {
    await tf.setBackend('cpu');
    const w = tf.variable(seededTensor('w0', [4, 6]));
    const x = seededTensor('x0', [5, 4]);
    const labels = tf.tensor1d([0, 1, 2, 3, 4], 'int32');
    const first = step(w, x, labels);
    let last = first;
    for (let i = 0; i < 20; i++) last = step(w, x, labels);
    expect(last).toBeLessThan(first);
    tf.dispose([w, x, labels]);
  });

  it.skipIf(!status.available)('trains with the native kernels, matching the pure losses and leaking no tensors', async () => {
    await tf.setBackend('cpu');
    const run = (): number[] => {
      const w = tf.variable(seededTensor('w1', [4, 6]));
      const x = seededTensor('x1', [5, 4]);
      const labels = tf.tensor1d([0, 1, 2, 3, 4], 'int32');
      step(w, x, labels);
      const before = tf.memory().numTensors;
      const losses = Array.from({ length: 5 }, () => step(w, x, labels));
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([w, x, labels]);
      return losses;
    };
    const pure = run();
    registerNativeKernels(tf);
    const native = run();
    native.forEach((l, i) => expect(l).toBeCloseTo(pure[i]!, 4));
  });

  it.skipIf(!status.available)('keeps the pure kernel for dtypes the native one does not take', () => {
    registerNativeKernels(tf);
    const s = tf.sum(tf.tensor1d([1, 2, 3], 'int32'));
    expect(s.dtype).toBe('int32');
    expect(s.dataSync()[0]).toBe(6);
  });
});
