/**
 * Copying kernels (Slice, SplitV, Concat, GatherV2) by contiguous runs, instead of the per-element
 * index arithmetic the pure kernels use when a slice is not contiguous (splitting a fused
 * [tokens, 3 * d] q/k/v projection, its gradient's concat, and embedding lookups). A block of runs
 * is one native memcpy loop (`copy2d`): a JS subarray per run would allocate thousands of short-lived
 * objects per training step.
 */
import { backend_util, util, type TensorInfo } from '@tensorflow/tfjs-core';
import { output, sizeOf, type KernelArgs, type NativeKernel } from './kernel-support.js';
import { allocF32 } from './buffer-pool.js';
import type { NativeAddon } from './native-binding.js';

type Copier = Pick<NativeAddon, 'copy2d'> | null;

/** Copies `rows` runs of `cols` floats; natively when an addon is given, else run by run. */
function copyRuns(addon: Copier, src: Float32Array, so: number, ss: number, dst: Float32Array, dof: number, ds: number, rows: number, cols: number): void {
  if (addon) {
    addon.copy2d(src, so, ss, dst, dof, ds, rows, cols);
    return;
  }
  for (let r = 0; r < rows; r++) dst.set(src.subarray(so + r * ss, so + r * ss + cols), dof + r * ds);
}

/** Copies the box [begin, begin + size) of x (row-major, `shape`) into a new array. */
export function sliceBox(x: Float32Array, shape: number[], begin: number[], size: number[], addon: Copier = null): Float32Array {
  const rank = shape.length;
  const out = allocF32(sizeOf(size));
  if (out.length === 0) return out;
  if (rank === 0) {
    out[0] = x[0]!;
    return out;
  }
  // Merge trailing axes taken whole into the innermost run.
  let inner = rank - 1;
  let run = size[inner]!;
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner]!;
  }
  const strides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  let offset = 0;
  for (let d = 0; d < rank; d++) offset += begin[d]! * strides[d]!;
  if (inner === 0) {
    copyRuns(addon, x, offset, 0, out, 0, 0, 1, run);
    return out;
  }
  // The axis just outside the run is one copyRuns block; axes further out are walked here.
  const rowAxis = inner - 1;
  const rows = size[rowAxis]!;
  const block = rows * run;
  const idx = new Array<number>(rowAxis).fill(0);
  for (let o = 0; o < out.length; o += block) {
    copyRuns(addon, x, offset, strides[rowAxis]!, out, o, run, rows, run);
    for (let d = rowAxis - 1; d >= 0; d--) {
      idx[d]!++;
      offset += strides[d]!;
      if (idx[d]! < size[d]!) break;
      offset -= strides[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function floatValues(args: KernelArgs, t: TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = args.backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}

/** Slice kernel for float32 tensors. */
export function sliceKernel(addon: Copier = null): NativeKernel {
  return (args: KernelArgs): TensorInfo | null => {
    const x = args.inputs['x']!;
    const xv = floatValues(args, x);
    if (!xv) return null;
    const [begin, size] = backend_util.slice_util.parseSliceParams(
      x as never, args.attrs?.['begin'] as number[], args.attrs?.['size'] as number[],
    );
    backend_util.slice_util.assertParamsValid(x as never, begin, size);
    return output(args.backend, size, sliceBox(xv, x.shape, begin, size, addon));
  };
}

/** SplitV kernel for float32 tensors. */
export function splitVKernel(addon: Copier = null): NativeKernel {
  return (args: KernelArgs): TensorInfo[] | null => {
    const x = args.inputs['x']!;
    const xv = floatValues(args, x);
    if (!xv) return null;
    const axis = util.parseAxisParam(args.attrs?.['axis'] as number, x.shape)[0]!;
    const sizes = backend_util.prepareSplitSize(x as never, args.attrs?.['numOrSizeSplits'] as number[], axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[axis] = s;
      const part = output(args.backend, size, sliceBox(xv, x.shape, begin, size, addon));
      begin[axis]! += s;
      return part;
    });
  };
}

/** Concat kernel for float32 tensors: rows of every input interleaved, one copyRuns per input. */
export function concatKernel(addon: Copier = null): NativeKernel {
  return (args: KernelArgs): TensorInfo | null => {
    const inputs = Object.keys(args.inputs)
      .sort((p, q) => Number(p) - Number(q))
      .map((k) => args.inputs[k]!);
    if (inputs.length === 0) return null;
    const values = inputs.map((t) => floatValues(args, t));
    if (values.some((v) => v === null)) return null;
    const first = inputs[0]!;
    const axis = util.parseAxisParam(args.attrs?.['axis'] as number, first.shape)[0]!;
    backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    const outShape = backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
    const outer = sizeOf(first.shape.slice(0, axis));
    const inner = inputs.map((t) => sizeOf(t.shape.slice(axis)));
    const rowLength = inner.reduce((p, q) => p + q, 0);
    const out = allocF32(outer * rowLength);
    let col = 0;
    inputs.forEach((_, i) => {
      const v = values[i]!, n = inner[i]!;
      if (n > 0 && outer > 0) copyRuns(addon, v, 0, n, out, col, rowLength, outer, n);
      col += n;
    });
    return output(args.backend, outShape, out);
  };
}

/** GatherV2 kernel for float32 params along axis 0 (embedding rows), int32 indices, no batch dims. */
export function gatherKernel(addon: Pick<NativeAddon, 'gatherRows'> | null = null): NativeKernel {
  return (args: KernelArgs): TensorInfo | null => {
    const x = args.inputs['x']!, indices = args.inputs['indices']!;
    const xv = floatValues(args, x);
    const iv = args.backend.data.get(indices.dataId).values;
    const axis = util.parseAxisParam(args.attrs?.['axis'] as number, x.shape)[0]!;
    if (!xv || !(iv instanceof Int32Array) || axis !== 0 || Number(args.attrs?.['batchDims'] ?? 0) !== 0) return null;
    const rows = x.shape[0]!;
    const row = sizeOf(x.shape.slice(1));
    const out = allocF32(iv.length * row);
    if (addon && row > 0) {
      addon.gatherRows(xv, row, iv, out);
      return output(args.backend, [...indices.shape, ...x.shape.slice(1)], out);
    }
    for (let i = 0; i < iv.length; i++) {
      const k = iv[i]!;
      if (!(k >= 0 && k < rows)) throw new RangeError(`gather: index ${k} at position ${i} is outside [0, ${rows})`);
      out.set(xv.subarray(k * row, (k + 1) * row), i * row);
    }
    return output(args.backend, [...indices.shape, ...x.shape.slice(1)], out);
  };
}
