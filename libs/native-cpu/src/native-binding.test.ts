import { describe, expect, it } from 'vitest';
import { loadNativeCpu, nativeAddon } from './native-binding.js';

const status = loadNativeCpu();

describe('loadNativeCpu', () => {
  it('never throws and names the active path', () => {
    expect(status.name).toMatch(/^(native-openblas|native-loops|cpu)$/);
    expect(status.available).toBe(status.name !== 'cpu');
  });

  it.skipIf(!status.available)('applies an explicit thread count to BLAS', () => {
    const set = loadNativeCpu({ numThreads: 1 });
    expect(set.threads).toBe(1);
  });
});

describe.skipIf(!status.available)('addon argument checks', () => {
  it('rejects a non-Float32Array buffer with a TypeError', () => {
    const addon = nativeAddon()!;
    expect(() => addon.unary(0, new Float64Array(3) as unknown as Float32Array, new Float32Array(3))).toThrow(TypeError);
  });

  it('rejects buffers smaller than the shapes with a RangeError', () => {
    const addon = nativeAddon()!;
    expect(() => addon.matmul(new Float32Array(4), new Float32Array(4), new Float32Array(4), [], [], [], 3, 3, 3, false, false)).toThrow(
      RangeError,
    );
    expect(() => addon.transpose(new Float32Array(6), [2, 3], [0, 0], new Float32Array(6))).toThrow(/not a permutation/);
  });

  it('rejects labels outside the vocabulary', () => {
    const addon = nativeAddon()!;
    expect(() =>
      addon.sparseXentFwd(new Float32Array(4), Int32Array.of(0, 2), new Float32Array(2), new Float32Array(4), 2, 2),
    ).toThrow(/label is outside/);
  });
});
