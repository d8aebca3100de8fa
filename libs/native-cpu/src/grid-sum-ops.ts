/**
 * Host kernels of DP-SGD's clipped sum on the noise grid (libs/privacy `GridClippedSum.addRows`):
 * per example (a row of `rowLength` float32 values) the float64 sum of its squares, and
 * counts[k] += Math.round(c_u x_u[k] / h) over the examples, in C (native/grid.c, threads over
 * rows and over coordinates). They give the same bits as libs/privacy's JS loops
 * (`jsGridSumKernels`; grid-sum-ops.test.ts checks the same arithmetic), so a release does not
 * depend on which one ran. They do not depend on the tfjs backend: the arrays are on the host.
 */
import { nativeAddon } from './native-binding.js';

/** The two loops of the clipped grid sum (structurally libs/privacy's `GridSumKernels`). */
export interface GridSumKernels {
  /** acc[u] += sum_k x[u rowLength + k]^2 in float64, added one by one in k order (continuing acc[u]). */
  rowsSumSquares(x: Float32Array, rowLength: number, rows: number, acc: Float64Array): void;
  /** counts[k] += Math.round((factors[u] * x[u rowLength + k]) / h) for u = 0 .. rows - 1 in order. */
  gridRoundAccumulate(x: Float32Array, rowLength: number, rows: number, factors: Float64Array, h: number, counts: Float64Array): void;
}

/**
 * The native kernels when the addon is built with them (loading it if needed; FEDLORA_NATIVE=0
 * turns it off), else null: callers then use libs/privacy's JS loops, which give the same bits.
 */
export function nativeGridSumKernels(): GridSumKernels | null {
  const addon = nativeAddon();
  if (!addon?.rowsSumSquares || !addon.gridRoundAccumulate) return null;
  const { rowsSumSquares, gridRoundAccumulate } = addon;
  return { rowsSumSquares: rowsSumSquares.bind(addon), gridRoundAccumulate: gridRoundAccumulate.bind(addon) };
}
