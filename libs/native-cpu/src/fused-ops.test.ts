import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { registerNativeKernels, unregisterNativeKernels } from './register.js';
import { maxRelativeError, nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';
import { causalApply, causalScores, causalSoftmax, geluTanh, layerNorm, linear, sparseSoftmaxCrossEntropy } from './fused-ops.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native fused-op tests skipped: ${skip}`);

describe.skipIf(skip !== null)('fused ops: native kernels vs tfjs composites', () => {
  it('layerNorm forward and gradients (x, gamma, beta) agree', async () => {
    const { native, pure } = await nativeAndPure(() => {
      const x = seededTensor('lnx', [2, 5, 24], -3, 3);
      const g = seededTensor('lng', [24], 0.5, 1.5) as tf.Tensor1D;
      const b = seededTensor('lnb', [24]) as tf.Tensor1D;
      const w = seededTensor('lnw', [2, 5, 24]);
      const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(layerNorm(xi, gi as tf.Tensor1D, bi as tf.Tensor1D), w));
      return [layerNorm(x, g, b), ...tf.grads(f)([x, g, b])];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(2e-5));
  });

  it('geluTanh forward and gradient agree', async () => {
    const { native, pure } = await nativeAndPure(() => {
      const x = seededTensor('gx', [4, 33], -5, 5);
      const w = seededTensor('gw', [4, 33]);
      return [geluTanh(x), tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(geluTanh(xi), w)))(x)];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(1e-5));
  });

  it('sparseSoftmaxCrossEntropy equals one-hot cross-entropy, with the same gradient', async () => {
    const labels = [3, 0, 9, 9, 5, 1];
    const { native, pure } = await nativeAndPure(() => {
      const logits = seededTensor('xl', [2, 3, 10], -6, 6);
      const y = tf.tensor2d([labels.slice(0, 3), labels.slice(3)], [2, 3], 'int32');
      const w = seededTensor('xw', [2, 3]);
      const f = (l: tf.Tensor) => tf.sum(tf.mul(sparseSoftmaxCrossEntropy(l, y), w));
      return [sparseSoftmaxCrossEntropy(logits, y), tf.grad(f)(logits)];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(1e-5));
  });
});

describe.skipIf(skip !== null)('causalSoftmax: fused masked softmax vs softmax(scale * s + M)', () => {
  it('forward and gradient agree, and masked weights are exactly 0', async () => {
    const { native, pure } = await nativeAndPure(() => {
      const s = seededTensor('css', [2, 3, 7, 7], -4, 4);
      const w = seededTensor('csw', [2, 3, 7, 7]);
      return [causalSoftmax(s, 0.35), tf.grad((si: tf.Tensor) => tf.sum(tf.mul(causalSoftmax(si, 0.35), w)))(s)];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(1e-5));
    for (let row = 0; row < 2 * 3 * 7; row++) {
      for (let j = (row % 7) + 1; j < 7; j++) {
        expect(native[0]![row * 7 + j]).toBe(0);
        expect(native[1]![row * 7 + j]).toBe(0);
      }
    }
  });

  for (const t of [5, 37, 70]) {
    it(`attention causalApply(causalSoftmax(causalScores(q, k)), v) and its q, k, v gradients agree (T ${t})`, async () => {
      const { native, pure } = await nativeAndPure(() => {
        const q = seededTensor('caq', [2, 2, t, 8], -2, 2), k = seededTensor('cak', [2, 2, t, 8], -2, 2), v = seededTensor('cav', [2, 2, t, 8]);
        const w = seededTensor('caw', [2, 2, t, 8]);
        const att = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) => causalApply(causalSoftmax(causalScores(qi, ki), 0.3), vi);
        return [att(q, k, v), ...tf.grads((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor) => tf.sum(tf.mul(att(qi, ki, vi), w)))([q, k, v])];
      });
      expect(native).toHaveLength(4);
      native.forEach((x, i) => expect(maxRelativeError(x, pure[i]!)).toBeLessThan(1e-5));
    });
  }

  it('causalScores and causalApply reject shapes that are not attention operands', () => {
    expect(() => causalScores(tf.zeros([2, 4, 8]), tf.zeros([2, 5, 8]))).toThrow(/causalScores: operand shapes \[2,4,8\] and \[2,5,8\] do not fit/);
    expect(() => causalApply(tf.zeros([2, 4, 5]), tf.zeros([2, 4, 8]))).toThrow(/causalApply: operand shapes/);
  });

  it('rejects scores that do not end in a square block', () => {
    expect(() => causalSoftmax(tf.zeros([2, 3, 4]), 1)).toThrow(/square \[T, T\] block, received shape \[2,3,4\]/);
  });
});

describe.skipIf(skip !== null)('linear: one _FusedMatMul natively, matMul + add elsewhere', () => {
  for (const transposeB of [false, true]) {
    for (const biasKind of ['none', 'row', 'full'] as const) {
      it(`forward and gradients (x, w, bias) agree (transposeB ${transposeB}, bias ${biasKind})`, async () => {
        const { native, pure } = await nativeAndPure(() => {
          const x = seededTensor('linx', [6, 5], -2, 2) as tf.Tensor2D;
          const w = seededTensor('linw', transposeB ? [7, 5] : [5, 7]) as tf.Tensor2D;
          const bias = biasKind === 'none' ? undefined : seededTensor('linb', biasKind === 'row' ? [7] : [6, 7]);
          const u = seededTensor('linu', [6, 7]);
          const f = (xi: tf.Tensor, wi: tf.Tensor, bi?: tf.Tensor) => tf.sum(tf.mul(linear(xi as tf.Tensor2D, wi as tf.Tensor2D, bi, transposeB), u));
          const xs = bias ? [x, w, bias] : [x, w];
          return [linear(x, w, bias, transposeB), ...tf.grads(f)(xs)];
        });
        expect(native).toHaveLength(pure.length);
        native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(1e-5));
      });
    }
  }

  it('computes only the gradients asked for (a frozen weight costs no product)', async () => {
    await tf.setBackend('cpu');
    registerNativeKernels(tf);
    const x = seededTensor('linx', [6, 5]) as tf.Tensor2D;
    const w = seededTensor('linw', [5, 7]) as tf.Tensor2D;
    const b = seededTensor('linb', [7]);
    tf.grad((xi: tf.Tensor) => tf.sum(linear(xi as tf.Tensor2D, w, b)))(x); // warm up
    const before = tf.memory().numTensors;
    const info = tf.tidy(() => {
      const kernels: string[] = [];
      const eng = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
      const orig = eng.runKernel;
      eng.runKernel = function (name: string, ...rest: unknown[]) {
        if (name === 'BatchMatMul' || name === '_FusedMatMul') kernels.push(name);
        return orig.call(this, name, ...rest);
      };
      try {
        tf.grad((xi: tf.Tensor) => tf.sum(linear(xi as tf.Tensor2D, w, b)))(x);
      } finally {
        eng.runKernel = orig;
      }
      return kernels;
    });
    unregisterNativeKernels(tf);
    expect(info).toEqual(['_FusedMatMul', 'BatchMatMul']); // forward, then dx = dy w^T only
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('fused ops: argument checks', () => {
  it('layerNorm rejects gamma of the wrong length', () => {
    expect(() => layerNorm(tf.zeros([2, 4]), tf.ones([3]) as tf.Tensor1D, tf.zeros([4]) as tf.Tensor1D)).toThrow(
      /gamma and beta must have 4 elements, received 3 and 4/,
    );
  });

  it('sparseSoftmaxCrossEntropy rejects float labels', () => {
    expect(() => sparseSoftmaxCrossEntropy(tf.zeros([2, 4]), tf.zeros([2]))).toThrow(TypeError);
  });

  it('sparseSoftmaxCrossEntropy rejects a label count that does not match the rows', () => {
    expect(() => sparseSoftmaxCrossEntropy(tf.zeros([2, 4]), tf.zeros([3], 'int32'))).toThrow(/expected 2 labels/);
  });
});
