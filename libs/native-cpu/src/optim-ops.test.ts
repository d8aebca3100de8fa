import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { nativeAndPure, nativeSkipReason, seededTensor, seededValues } from './testing.js';
import { adamwScalars, adamwUpdate, sumOfSquares, type AdamWStep } from './optim-ops.js';
import { registerNativeKernels, unregisterNativeKernels } from './register.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native optimizer tests skipped: ${skip}`);

const HYPER: AdamWStep = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3, gradScale: 0.37 };

/** Three AdamW steps chained on seeded random inputs, returning every intermediate state. */
function threeSteps(shape: number[]): tf.Tensor[] {
  let p = seededTensor('adam-p', shape, -2, 2);
  let m = seededTensor('adam-m', shape, -0.1, 0.1);
  let v = seededTensor('adam-v', shape, 0, 0.01);
  const out: tf.Tensor[] = [];
  for (let t = 1; t <= 3; t++) {
    const g = seededTensor(`adam-g${t}`, shape, -3, 3);
    [p, m, v] = adamwUpdate(p, g, m, v, { ...HYPER, step: t, gradScale: t === 2 ? 1 : HYPER.gradScale });
    out.push(p, m, v);
  }
  return out;
}

describe.skipIf(skip !== null)('adamwUpdate: native kernel vs pure-JS kernels', () => {
  it('gives bit-identical parameters and moments on random inputs', async () => {
    for (const shape of [[8, 96], [3, 5, 7], [20000]]) {
      const { native, pure } = await nativeAndPure(() => threeSteps(shape));
      expect(native.length).toBe(9);
      native.forEach((x, i) => expect(Buffer.from(x.buffer).equals(Buffer.from(pure[i]!.buffer))).toBe(true));
    }
  });

  it('creates no tensor beyond its three outputs', async () => {
    await tf.setBackend('cpu');
    registerNativeKernels(tf);
    try {
      const [p, g, m, v] = ['p', 'g', 'm', 'v'].map((s) => seededTensor(`leak-${s}`, [16, 32]));
      const before = tf.memory().numTensors;
      const out = adamwUpdate(p!, g!, m!, v!, HYPER);
      expect(tf.memory().numTensors).toBe(before + 3);
      tf.dispose([...out, p!, g!, m!, v!]);
    } finally {
      unregisterNativeKernels(tf);
    }
  });
});

describe('adamwUpdate: the tfjs-op path', () => {
  it('matches the AdamW formula computed in float64 (to float32 rounding)', async () => {
    await tf.setBackend('cpu');
    const n = 64;
    const [p, g, m, v] = ['p', 'g', 'm', 'v'].map((s, i) => seededValues(`ref-${s}`, n, i === 3 ? 0 : -1, 1));
    const out = adamwUpdate(tf.tensor1d(p!), tf.tensor1d(g!), tf.tensor1d(m!), tf.tensor1d(v!), HYPER);
    const [p1, m1, v1] = out.map((t) => t.dataSync());
    const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step: t, gradScale: s } = HYPER as Required<AdamWStep>;
    for (let i = 0; i < n; i++) {
      const gi = g![i]! * s;
      const mi = b1 * m![i]! + (1 - b1) * gi;
      const vi = b2 * v![i]! + (1 - b2) * gi * gi;
      const pi = p![i]! * (1 - lr * wd) - (lr * (mi / (1 - b1 ** t))) / (Math.sqrt(vi / (1 - b2 ** t)) + eps);
      expect(m1![i]).toBeCloseTo(mi, 6);
      expect(v1![i]).toBeCloseTo(vi, 7);
      expect(p1![i]).toBeCloseTo(pi, 5);
    }
    tf.dispose(out);
  });

  it('rejects a gradient whose shape differs from the parameter', () => {
    const z = tf.zeros([2, 3]);
    expect(() => adamwUpdate(z, tf.zeros([3, 2]), z, z, HYPER)).toThrow(/gradient must have the parameter's shape \[2,3\], received \[3,2\]/);
  });

  it('rejects a step count below 1', () => {
    expect(() => adamwScalars({ ...HYPER, step: 0 })).toThrow(/step must be a positive integer, received 0/);
  });
});

describe('sumOfSquares', () => {
  it('agrees between the native and pure paths and with a float64 sum', async () => {
    const xs = [seededValues('ss1', 10007, -3, 3), seededValues('ss2', 40, -1, 1), seededValues('ss3', 70000, -1, 1)];
    const exact = xs.reduce((s, x) => s + x.reduce((a, b) => a + b * b, 0), 0);
    await tf.setBackend('cpu');
    const ts = xs.map((x) => tf.tensor1d(x));
    if (!skip) {
      registerNativeKernels(tf);
      expect(Math.abs(sumOfSquares(ts) - exact) / exact).toBeLessThan(1e-6);
      unregisterNativeKernels(tf);
    }
    expect(Math.abs(sumOfSquares(ts) - exact) / exact).toBeLessThan(1e-5);
    expect(sumOfSquares([])).toBe(0);
    tf.dispose(ts);
  });
});
