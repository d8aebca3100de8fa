import { describe, expect, it } from 'vitest';
import { nativeSkipReason, seededValues } from './testing.js';
import { nativeGridSumKernels, type GridSumKernels } from './grid-sum-ops.js';
import { nativeAddon } from './native-binding.js';

const skip = nativeSkipReason();
if (skip) console.warn(`native grid-sum tests skipped: ${skip}`);

/** The specification, as libs/privacy's JS loops compute it: squares added one by one; Math.round of f x / h. */
const spec: GridSumKernels = {
  rowsSumSquares(x, rowLength, rows, acc) {
    for (let u = 0; u < rows; u++) for (let k = 0; k < rowLength; k++) acc[u] = acc[u]! + x[u * rowLength + k]! * x[u * rowLength + k]!;
  },
  gridRoundAccumulate(x, rowLength, rows, factors, h, counts) {
    for (let u = 0; u < rows; u++) for (let k = 0; k < rowLength; k++) counts[k] = counts[k]! + Math.round((factors[u]! * x[u * rowLength + k]!) / h);
  },
};

const sameBits = (a: Float64Array, b: Float64Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Both kernels over the same rows: a gradient's squares continued from `start`, and counts from `counts0`. */
function both(x: Float32Array, rowLength: number, rows: number, factors: Float64Array, h: number, start: Float64Array, counts0: Float64Array) {
  const native = nativeGridSumKernels()!;
  const run = (k: GridSumKernels) => {
    const acc = Float64Array.from(start);
    const counts = Float64Array.from(counts0);
    k.rowsSumSquares(x, rowLength, rows, acc);
    k.gridRoundAccumulate(x, rowLength, rows, factors, h, counts);
    return { acc, counts };
  };
  return { native: run(native), js: run(spec) };
}

describe.skipIf(skip !== null)('grid sum kernels: native (native/grid.c) vs the JS arithmetic', () => {
  it('are the native ones when the addon is built', () => {
    expect(nativeAddon()?.gridRoundAccumulate).toBeTypeOf('function');
    expect(nativeGridSumKernels()).not.toBeNull();
  });

  it.each([
    ['one thread (small)', 37, 5],
    ['split across threads (rows x length above the grain)', 24_576, 16],
  ])('give the same bits on random gradients, %s', (_, rowLength, rows) => {
    const x = seededValues(`grid-x-${rowLength}`, rowLength * rows, -3e-3, 3e-3);
    const factors = Float64Array.from({ length: rows }, (__, u) => (u % 3 === 0 ? 1 : 0.999999 / (u + 1)));
    const start = Float64Array.from(seededValues('grid-start', rows, 0, 1e-4));
    const counts0 = Float64Array.from({ length: rowLength }, (__, k) => (k % 7) - 3);
    const { native, js } = both(x, rowLength, rows, factors, 2 ** -16 * 1.3, start, counts0);
    expect(sameBits(native.acc, js.acc)).toBe(true);
    expect(sameBits(native.counts, js.counts)).toBe(true);
    expect(native.counts.some((v, k) => v !== counts0[k])).toBe(true);
  });

  it('round halves toward +infinity and their neighbours to the nearest integer, as Math.round', () => {
    // x / h lands exactly on -2.5, -0.5, 0.5, 2.5 (C's round() would give -3 and -1 for the negatives),
    // one ulp either side of them, on -0 and 0, and far beyond 2^24 grid steps.
    const h = 2 ** -10;
    const ties = [-2.5, -0.5, 0.5, 2.5, -1.5, 1.5];
    const near = ties.flatMap((t) => [t + 2 ** -20, t - 2 ** -20]);
    const values = [...ties, ...near, 0, -0, 3e4 + 0.5, -3e4 - 0.5, 2 ** 25 + 4, -(2 ** 25) - 4].map((v) => v * h);
    const x = Float32Array.from(values);
    expect(Array.from(x, (v) => v / h + 0)).toEqual(values.map((v) => v / h + 0)); // every value is float32-exact
    const rows = 1;
    const { native, js } = both(x, x.length, rows, Float64Array.of(1), h, new Float64Array(1), new Float64Array(x.length));
    expect(sameBits(native.counts, js.counts)).toBe(true);
    expect(Array.from(native.counts.subarray(0, ties.length))).toEqual([-2, 0, 1, 3, -1, 2]);
    expect(Array.from(native.counts, (v) => v + 0)).toEqual(values.map((v) => Math.round(v / h) + 0));
  });

  it('refuse buffers shorter than rows x rowLength and a grid step that is not > 0', () => {
    const addon = nativeAddon()!;
    expect(() => addon.rowsSumSquares!(new Float32Array(5), 3, 2, new Float64Array(2))).toThrow(/smaller/);
    expect(() => addon.gridRoundAccumulate!(new Float32Array(6), 3, 2, new Float64Array(1), 1, new Float64Array(3))).toThrow(/smaller/);
    expect(() => addon.gridRoundAccumulate!(new Float32Array(6), 3, 2, new Float64Array(2), 0, new Float64Array(3))).toThrow(/h must be/);
    expect(() => addon.rowsSumSquares!(new Float32Array(6), 3, 2, new Float32Array(2) as unknown as Float64Array)).toThrow(/Float64Array/);
  });
});
