import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { nativeSkipReason, seededTensor } from './testing.js';
import { registerNativeKernels, unregisterNativeKernels } from './register.js';
import { bufferPoolStats, sizeClass } from './buffer-pool.js';

const skip = nativeSkipReason();
if (skip) console.warn(`buffer pool tests skipped: ${skip}`);

describe.skipIf(skip !== null)('output buffer pool', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    registerNativeKernels(tf, { bufferPool: { minElements: 1 } });
  });
  afterAll(() => unregisterNativeKernels(tf));

  it('reuses the buffers of disposed tensors', () => {
    const before = bufferPoolStats().reused;
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.exp(tf.add(seededTensor('p', [64, 64]), 1)));
    expect(bufferPoolStats().reused).toBeGreaterThan(before);
  });

  it('never recycles an array that dataSync handed out', () => {
    const t = tf.mul(seededTensor('d', [32, 32]), 3);
    const values = t.dataSync();
    const copy = Array.from(values);
    t.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.mul(seededTensor(`d${i}`, [32, 32]), -7));
    expect(Array.from(values)).toEqual(copy);
  });

  it('never recycles a buffer that a view (from a pure kernel) still reads', () => {
    const t = tf.add(seededTensor('v', [4, 256]), 1);
    const row = tf.unstack(t)[1]!;
    const expected = Array.from(tf.tidy(() => tf.slice(tf.add(seededTensor('v', [4, 256]), 1), [1, 0], [1, 256])).dataSync());
    t.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.add(seededTensor(`v${i}`, [4, 256]), 2));
    expect(Array.from(row.dataSync())).toEqual(expected);
    row.dispose();
  });

  it('keeps a reshaped alias alive after the original is disposed', () => {
    const t = tf.sub(seededTensor('r', [16, 16]), 1);
    const flat = tf.reshape(t, [256]);
    const expected = Array.from(tf.tidy(() => tf.sub(seededTensor('r', [16, 16]), 1)).dataSync());
    t.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.sub(seededTensor(`r${i}`, [16, 16]), 5));
    expect(Array.from(flat.dataSync())).toEqual(expected);
    flat.dispose();
  });

  it('serves a request from a freed buffer of the same size class when shapes vary from step to step (Poisson batches)', () => {
    const expected = Array.from(tf.tidy(() => tf.exp(seededTensor('c', [59, 64]))).dataSync());
    tf.tidy(() => void tf.exp(seededTensor('b', [60, 64]))); // 3840 values, back to the pool at the end of the tidy
    const before = bufferPoolStats();
    const t = tf.exp(seededTensor('c', [59, 64])); // 3776 values: the same class (capacity 3840)
    const after = bufferPoolStats();
    expect(after.reused).toBeGreaterThan(before.reused);
    expect(after.allocated).toBe(before.allocated);
    expect(t.shape).toEqual([59, 64]);
    expect(Array.from(t.dataSync())).toEqual(expected);
    t.dispose();
  });
});

describe('sizeClass', () => {
  it('rounds up to one of 8 classes per octave and is idempotent', () => {
    expect(sizeClass(3776)).toBe(3840);
    expect(sizeClass(3840)).toBe(3840);
    expect(sizeClass(1024)).toBe(1024);
    expect(sizeClass(1025)).toBe(1152);
    expect(sizeClass(7)).toBe(7);
    for (const n of [17, 100, 4097, 123457, 1572864]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c / n).toBeLessThan(1.125);
      expect(sizeClass(c)).toBe(c);
    }
  });
});
