import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { maxRelativeError, nativeAndPure, nativeSkipReason, seededTensor } from './testing.js';
import { planMatmul } from './matmul-kernels.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native matmul tests skipped: ${skip}`);

function operandShape(batch: number[], rows: number, cols: number, transpose: boolean): number[] {
  return [...batch, ...(transpose ? [cols, rows] : [rows, cols])];
}

const BATCHES: [number[], number[]][] = [
  [[], []],
  [[3], [3]],
  [[4], []],
  [[], [2]],
  [[2, 1], [1, 3]],
  [[1], [5]],
  [[2, 3], [3]],
];

describe.skipIf(skip !== null)('native BatchMatMul', () => {
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      for (const [batchA, batchB] of BATCHES) {
        it(`matches the pure kernel for transposeA=${ta} transposeB=${tb} batches [${batchA}] x [${batchB}]`, async () => {
          const [m, k, n] = [7, 13, 9];
          const a = () => seededTensor(`a${ta}${tb}${batchA}`, operandShape(batchA, m, k, ta));
          const b = () => seededTensor(`b${ta}${tb}${batchB}`, operandShape(batchB, k, n, tb));
          // The pure kernel mis-broadcasts when both operands broadcast ([2,1] x [1,3]), so the
          // reference broadcasts the batch dimensions explicitly first.
          const batch = planMatmul(a().shape, b().shape, ta, tb).batchShape;
          const full = (t: tf.Tensor) => tf.broadcastTo(t, [...batch, ...t.shape.slice(-2)]);
          const { native, pure } = await nativeAndPure(
            () => tf.matMul(a(), b(), ta, tb),
            () => tf.matMul(full(a()), full(b()), ta, tb),
          );
          expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
        });
      }
    }
  }

  // LoRA's rank-r products (one dimension <= 16, the others not) in every transpose variant, batched.
  for (const [m, k, n] of [[8, 300, 200], [300, 200, 8], [150, 8, 300], [16, 17, 33], [17, 40, 16], [33, 16, 17], [1, 260, 1]]) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        it(`matches the pure kernel on the skinny product ${m}x${k}x${n}, transposeA=${ta} transposeB=${tb}`, async () => {
          const a = () => seededTensor(`sa${m}${k}${ta}`, operandShape([2], m!, k!, ta), -2, 2);
          const b = () => seededTensor(`sb${k}${n}${tb}`, operandShape([2], k!, n!, tb), -2, 2);
          const { native, pure } = await nativeAndPure(() => tf.matMul(a(), b(), ta, tb));
          expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
        });
      }
    }
  }

  it('matches the pure kernel on a product large enough to use blocked BLAS paths', async () => {
    const { native, pure } = await nativeAndPure(() =>
      tf.matMul(seededTensor('la', [2, 64, 96]), seededTensor('lb', [96, 80])),
    );
    expect(maxRelativeError(native[0]!, pure[0]!)).toBeLessThan(1e-5);
  });

  it('matches fused matmul with bias and relu, and its gradients', async () => {
    const { native, pure } = await nativeAndPure(() => {
      const a = seededTensor('fa', [12, 5]);
      const b = seededTensor('fb', [5, 4]);
      const bias = seededTensor('fbias', [4]);
      const f = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
        tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: c, activation: 'relu' });
      const y = f(a, b, bias);
      const grads = tf.grads((x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.sum(f(x, w, c)))([a, b, bias]);
      return [y, ...grads];
    });
    native.forEach((v, i) => expect(maxRelativeError(v, pure[i]!)).toBeLessThan(1e-5));
  });
});

describe('planMatmul', () => {
  it('rejects inner dimensions that disagree, naming both shapes', () => {
    expect(() => planMatmul([2, 3], [4, 5], false, false)).toThrow(/inner dimensions must agree.*\[2,3\].*\[4,5\]/);
  });

  it('rejects batch dimensions that do not broadcast', () => {
    expect(() => planMatmul([2, 3, 4], [3, 4, 5], false, false)).toThrow(RangeError);
  });

  it('broadcasts batch dimensions NumPy-style', () => {
    expect(planMatmul([2, 1, 3, 4], [5, 4, 6], false, false).outShape).toEqual([2, 5, 3, 6]);
  });
});
