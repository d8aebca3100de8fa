/**
 * Reductions (Sum, Mean, Max, Min, Prod) and Softmax. Axes are grouped into runs of reduced and
 * kept axes: reducing the inner run is a row reduction, reducing the outer run a column reduction
 * (bias gradients), anything else is transposed natively first.
 */
import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import { ReduceOp, type NativeAddon } from './native-binding.js';
import { f32, output, sizeOf, type KernelArgs, type NativeKernel } from './kernel-support.js';
import { nativeTranspose } from './transpose-kernel.js';
import { allocF32 } from './buffer-pool.js';

/** tfjs kernel name -> [native op, name of the axis attribute]. */
export const REDUCE_KERNELS: Readonly<Record<string, readonly [number, string]>> = {
  Sum: [ReduceOp.sum, 'axis'],
  Mean: [ReduceOp.mean, 'axis'],
  Max: [ReduceOp.max, 'reductionIndices'],
  Min: [ReduceOp.min, 'axis'],
  Prod: [ReduceOp.prod, 'axis'],
};

/** Reduces x over `axes` into a new buffer of the kept axes' size. */
export function nativeReduce(addon: NativeAddon, op: number, x: Float32Array, shape: number[], axes: number[]): Float32Array {
  const reduced = new Set(axes);
  const outSize = sizeOf(shape.filter((_, i) => !reduced.has(i)));
  const out = allocF32(outSize);
  const total = sizeOf(shape);
  if (total === 0) return out;
  // Runs of (reduced?, size) over non-unit axes.
  const runs: { reduce: boolean; size: number }[] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const reduce = reduced.has(i);
    const last = runs[runs.length - 1];
    if (last && last.reduce === reduce) last.size *= d;
    else runs.push({ reduce, size: d });
  });
  if (runs.length === 0 || runs.every((r) => !r.reduce)) {
    out.set(x.subarray(0, total));
    return out;
  }
  if (runs.length === 1) {
    addon.reduceRows(op, x, out, 1, total);
  } else if (runs.length === 2 && runs[1]!.reduce) {
    addon.reduceRows(op, x, out, runs[0]!.size, runs[1]!.size);
  } else if (runs.length === 2) {
    addon.reduceCols(op, x, out, runs[0]!.size, runs[1]!.size);
  } else {
    const kept = shape.map((_, i) => i).filter((i) => !reduced.has(i));
    const perm = [...kept, ...axes];
    const t = nativeTranspose(addon, x, shape, perm);
    addon.reduceRows(op, t.values, out, outSize, total / Math.max(outSize, 1));
  }
  return out;
}

/** A native reduction kernel for one op code. */
export function reduceKernel(addon: NativeAddon, op: number, axisAttr: string): NativeKernel {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | null => {
    const x = inputs['x']!;
    const xv = f32(backend, x);
    if (!xv || x.shape.length > 8 || sizeOf(x.shape) === 0) return null;
    const raw = attrs?.[axisAttr];
    const axes = util.parseAxisParam((raw ?? null) as unknown as number[], x.shape);
    const unique = [...new Set(axes)].sort((p, q) => p - q);
    const values = nativeReduce(addon, op, xv, x.shape, unique);
    const keepDims = Boolean(attrs?.['keepDims']);
    const outShape = keepDims
      ? x.shape.map((d, i) => (unique.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !unique.includes(i));
    return output(backend, outShape, values);
  };
}

/** Native Softmax kernel over the last axis. */
export function softmaxKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | null => {
    const logits = inputs['logits']!;
    const xv = f32(backend, logits);
    const rank = logits.shape.length;
    if (!xv || rank === 0 || sizeOf(logits.shape) === 0) return null;
    const dim = Number(attrs?.['dim'] ?? -1);
    if (dim !== -1 && dim !== rank - 1) return null;
    const cols = logits.shape[rank - 1]!;
    const out = allocF32(xv.length);
    addon.softmax(xv, out, xv.length / cols, cols);
    return output(backend, logits.shape.slice(), out);
  };
}
