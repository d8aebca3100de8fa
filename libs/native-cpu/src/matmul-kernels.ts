/**
 * BatchMatMul and _FusedMatMul through BLAS sgemm: every transposeA/transposeB combination is a
 * BLAS flag (no copy), batch dimensions broadcast NumPy-style, and a batched left operand against
 * a shared right operand becomes one large product (rows of all batches stacked).
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { BinaryOp, UnaryOp, type NativeAddon } from './native-binding.js';
import { f32, output, sizeOf, type KernelArgs, type NativeKernel } from './kernel-support.js';
import { allocF32 } from './buffer-pool.js';

/** Shape of a matrix product: output shape plus the sgemm arguments. */
interface MatmulPlan {
  outShape: number[];
  batchShape: number[];
  aStrides: number[];
  bStrides: number[];
  m: number;
  n: number;
  k: number;
}

function batchStrides(batch: number[], rank: number, matrixSize: number, outBatch: number[]): number[] {
  const strides = new Array<number>(outBatch.length).fill(0);
  let st = matrixSize;
  for (let d = outBatch.length - 1; d >= 0; d--) {
    const src = d - (outBatch.length - rank);
    if (src < 0) continue;
    strides[d] = batch[src] === 1 ? 0 : st;
    st *= batch[src]!;
  }
  return strides;
}

/** Validates shapes like tfjs' batchMatMul and returns the product's plan. */
export function planMatmul(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): MatmulPlan {
  if (aShape.length < 2 || bShape.length < 2) {
    throw new RangeError(`matMul: expected rank >= 2 operands, received shapes [${aShape}] and [${bShape}]`);
  }
  const ar = aShape.length, br = bShape.length;
  const m = transposeA ? aShape[ar - 1]! : aShape[ar - 2]!;
  const k = transposeA ? aShape[ar - 2]! : aShape[ar - 1]!;
  const kb = transposeB ? bShape[br - 1]! : bShape[br - 2]!;
  const n = transposeB ? bShape[br - 2]! : bShape[br - 1]!;
  if (k !== kb) {
    throw new RangeError(
      `matMul: inner dimensions must agree, received a [${aShape}] (transposeA=${transposeA}) and b [${bShape}] (transposeB=${transposeB})`,
    );
  }
  const batchA = aShape.slice(0, -2), batchB = bShape.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const batchShape: number[] = [];
  for (let d = 0; d < rank; d++) {
    const da = batchA[d - (rank - batchA.length)] ?? 1;
    const db = batchB[d - (rank - batchB.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`matMul: batch dimensions do not broadcast, received [${batchA}] and [${batchB}]`);
    }
    batchShape.push(Math.max(da, db));
  }
  return {
    outShape: [...batchShape, m, n],
    batchShape,
    aStrides: batchStrides(batchA, batchA.length, m * k, batchShape),
    bStrides: batchStrides(batchB, batchB.length, k * n, batchShape),
    m, n, k,
  };
}

/** Computes op(a) x op(b) into a new buffer. */
export function nativeMatmul(
  addon: NativeAddon, a: Float32Array, b: Float32Array, plan: MatmulPlan, transposeA: boolean, transposeB: boolean,
): Float32Array {
  const out = allocF32(sizeOf(plan.outShape));
  const batch = sizeOf(plan.batchShape);
  const bShared = plan.bStrides.every((s) => s === 0);
  const aFull = plan.aStrides.every((s, i) => s !== 0 || plan.batchShape[i] === 1);
  if (batch > 1 && bShared && aFull && !transposeA) {
    // Rows of every batch of a are contiguous: one (batch*m) x k product against the shared b.
    addon.matmul(a, b, out, [], [], [], batch * plan.m, plan.n, plan.k, false, transposeB);
  } else {
    addon.matmul(a, b, out, plan.batchShape, plan.aStrides, plan.bStrides, plan.m, plan.n, plan.k, transposeA, transposeB);
  }
  return out;
}

/** Native BatchMatMul kernel. */
export function batchMatMulKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | null => {
    const a = inputs['a']!, b = inputs['b']!;
    const av = f32(backend, a), bv = f32(backend, b);
    if (!av || !bv || sizeOf(a.shape) === 0 || sizeOf(b.shape) === 0) return null;
    const ta = Boolean(attrs?.['transposeA']), tb = Boolean(attrs?.['transposeB']);
    const plan = planMatmul(a.shape, b.shape, ta, tb);
    return output(backend, plan.outShape, nativeMatmul(addon, av, bv, plan, ta, tb));
  };
}

const ACTIVATIONS: Record<string, number | null> = { linear: null, relu: UnaryOp.relu, sigmoid: UnaryOp.sigmoid };

/** Native _FusedMatMul kernel (bias + linear/relu/sigmoid); other activations use the JS kernel. */
export function fusedMatMulKernel(addon: NativeAddon): NativeKernel {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | null => {
    const a = inputs['a']!, b = inputs['b']!, bias = inputs['bias'];
    const activation = String(attrs?.['activation'] ?? 'linear');
    if (!(activation in ACTIVATIONS) || inputs['preluActivationWeights']) return null;
    const av = f32(backend, a), bv = f32(backend, b);
    const biasV = bias ? f32(backend, bias) : null;
    if (!av || !bv || (bias && !biasV) || sizeOf(a.shape) === 0 || sizeOf(b.shape) === 0) return null;
    const ta = Boolean(attrs?.['transposeA']), tb = Boolean(attrs?.['transposeB']);
    const plan = planMatmul(a.shape, b.shape, ta, tb);
    const out = nativeMatmul(addon, av, bv, plan, ta, tb);
    if (bias && biasV) {
      if (bias.shape.length > plan.outShape.length) return null;
      addon.binary(BinaryOp.add, out, plan.outShape, biasV, bias.shape, out, plan.outShape);
    }
    const act = ACTIVATIONS[activation];
    if (act !== null && act !== undefined) addon.unary(act, out, out);
    return output(backend, plan.outShape, out);
  };
}
