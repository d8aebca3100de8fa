/**
 * Slice and SplitV by contiguous runs: each innermost run of the box is one TypedArray.set, instead
 * of the per-element index arithmetic the pure kernel uses when a slice is not contiguous (e.g.
 * splitting a fused [tokens, 3 * d] q/k/v projection into q, k and v).
 */
import { backend_util, util, type TensorInfo } from '@tensorflow/tfjs-core';
import { output, sizeOf, type KernelArgs, type NativeKernel } from './kernel-support.js';

/** Copies the box [begin, begin + size) of x (row-major, `shape`) into a new array. */
export function sliceBox(x: Float32Array, shape: number[], begin: number[], size: number[]): Float32Array {
  const rank = shape.length;
  const out = new Float32Array(sizeOf(size));
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
  const idx = new Array<number>(inner).fill(0);
  for (let o = 0; o < out.length; o += run) {
    out.set(x.subarray(offset, offset + run), o);
    for (let d = inner - 1; d >= 0; d--) {
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
export function sliceKernel(): NativeKernel {
  return (args: KernelArgs): TensorInfo | null => {
    const x = args.inputs['x']!;
    const xv = floatValues(args, x);
    if (!xv) return null;
    const [begin, size] = backend_util.slice_util.parseSliceParams(
      x as never, args.attrs?.['begin'] as number[], args.attrs?.['size'] as number[],
    );
    backend_util.slice_util.assertParamsValid(x as never, begin, size);
    return output(args.backend, size, sliceBox(xv, x.shape, begin, size));
  };
}

/** SplitV kernel for float32 tensors. */
export function splitVKernel(): NativeKernel {
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
      const part = output(args.backend, size, sliceBox(xv, x.shape, begin, size));
      begin[axis]! += s;
      return part;
    });
  };
}
