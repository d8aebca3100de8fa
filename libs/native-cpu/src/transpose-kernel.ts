/**
 * Transpose: the native kernel merges axes that stay adjacent, copies contiguous runs with memcpy
 * and swaps the last two axes in cache-sized tiles (the attention head split/merge and the
 * transposed-matmul gradients are the hot cases).
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './native-binding.js';
import { f32, output, sizeOf, type KernelArgs, type NativeKernel } from './kernel-support.js';
import { allocF32 } from './buffer-pool.js';

/** Validates a permutation of `rank` axes and returns it as numbers. */
export function checkPerm(perm: unknown, rank: number): number[] {
  if (!Array.isArray(perm) || perm.length !== rank) {
    throw new RangeError(`transpose: perm must list ${rank} axes, received ${JSON.stringify(perm)}`);
  }
  const seen = new Set<number>();
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= rank || seen.has(p)) {
      throw new RangeError(`transpose: perm must be a permutation of 0..${rank - 1}, received ${JSON.stringify(perm)}`);
    }
    seen.add(p);
  }
  return perm as number[];
}

/** Native transpose of x into a new buffer; returns the output shape and values. */
export function nativeTranspose(addon: NativeAddon, x: Float32Array, shape: number[], perm: number[]): { shape: number[]; values: Float32Array } {
  const outShape = perm.map((p) => shape[p]!);
  const values = allocF32(sizeOf(shape));
  if (values.length > 0) addon.transpose(x, shape, perm, values);
  return { shape: outShape, values };
}

/** Native Transpose kernel. */
export function transposeKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | null => {
    const x = inputs['x']!;
    const xv = f32(backend, x);
    if (!xv || x.shape.length > 8) return null;
    const perm = checkPerm(attrs?.['perm'], x.shape.length);
    const { shape, values } = nativeTranspose(addon, xv, x.shape, perm);
    return output(backend, shape, values);
  };
}
