/**
 * Element-wise kernels: binary ops with NumPy broadcasting and unary math, one native pass each
 * (the pure-JS cpu kernels recompute a multi-index per element when shapes broadcast).
 */
import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import { BinaryOp, UnaryOp, type NativeAddon } from './native-binding.js';
import { f32, output, sizeOf, type KernelArgs, type NativeKernel } from './kernel-support.js';
import { allocF32 } from './buffer-pool.js';

/** tfjs kernel name -> native binary op code. */
export const BINARY_KERNELS: Readonly<Record<string, number>> = {
  Add: BinaryOp.add,
  Sub: BinaryOp.sub,
  Multiply: BinaryOp.mul,
  RealDiv: BinaryOp.div,
  SquaredDifference: BinaryOp.squaredDifference,
  Maximum: BinaryOp.max,
  Minimum: BinaryOp.min,
  Pow: BinaryOp.pow,
};

/** tfjs kernel name -> native unary op code. */
export const UNARY_KERNELS: Readonly<Record<string, number>> = {
  Exp: UnaryOp.exp,
  Log: UnaryOp.log,
  Tanh: UnaryOp.tanh,
  Sqrt: UnaryOp.sqrt,
  Rsqrt: UnaryOp.rsqrt,
  Square: UnaryOp.square,
  Neg: UnaryOp.neg,
  Reciprocal: UnaryOp.reciprocal,
  Sigmoid: UnaryOp.sigmoid,
  Relu: UnaryOp.relu,
  Abs: UnaryOp.abs,
};

/** A native binary kernel for one op code. */
export function binaryKernel(addon: NativeAddon, op: number): NativeKernel {
  return ({ inputs, backend }: KernelArgs): TensorInfo | null => {
    const a = inputs['a']!, b = inputs['b']!;
    const av = f32(backend, a), bv = f32(backend, b);
    if (!av || !bv) return null;
    const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    if (outShape.length > 8 || sizeOf(outShape) === 0) return null;
    const out = allocF32(sizeOf(outShape));
    addon.binary(op, av, a.shape, bv, b.shape, out, outShape);
    return output(backend, outShape, out);
  };
}

/** A native unary kernel for one op code. */
export function unaryKernel(addon: NativeAddon, op: number): NativeKernel {
  return ({ inputs, backend }: KernelArgs): TensorInfo | null => {
    const x = inputs['x']!;
    const xv = f32(backend, x);
    if (!xv) return null;
    const out = allocF32(sizeOf(x.shape));
    addon.unary(op, xv, out);
    return output(backend, x.shape.slice(), out);
  };
}
