/**
 * Kernels behind the fused ops in fused-ops.ts: layer norm, tanh-GELU and sparse softmax
 * cross-entropy, forward and backward, registered under fedlora-specific kernel names.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { UnaryOp, type NativeAddon } from './native-binding.js';
import { f32, output, sizeOf, type CpuBackendLike, type KernelArgs, type NativeKernel } from './kernel-support.js';
import { allocF32 } from './buffer-pool.js';

/** Kernel names of the fused ops. */
export const FusedKernelName = {
  layerNorm: 'FedloraLayerNorm',
  layerNormGrad: 'FedloraLayerNormGrad',
  geluTanh: 'FedloraGeluTanh',
  geluTanhGrad: 'FedloraGeluTanhGrad',
  sparseXent: 'FedloraSparseXent',
  sparseXentGrad: 'FedloraSparseXentGrad',
  softmaxGrad: 'FedloraSoftmaxGrad',
  causalSoftmax: 'FedloraCausalSoftmax',
  causalSoftmaxGrad: 'FedloraCausalSoftmaxGrad',
  causalMatmul: 'FedloraCausalMatmul',
  adamw: 'FedloraAdamW',
} as const;

function need(backend: CpuBackendLike, t: TensorInfo | undefined, name: string): Float32Array {
  const v = t ? f32(backend, t) : null;
  if (!v) throw new TypeError(`${name}: expected a float32 tensor on the cpu backend, received ${t?.dtype ?? 'nothing'}`);
  return v;
}

function labelsOf(backend: CpuBackendLike, t: TensorInfo | undefined, rows: number): Int32Array {
  const v = t ? backend.data.get(t.dataId).values : undefined;
  if (!(v instanceof Int32Array) || t?.dtype !== 'int32') {
    throw new TypeError(`labels: expected an int32 tensor, received ${t?.dtype ?? 'nothing'}`);
  }
  if (v.length !== rows) throw new RangeError(`labels: expected ${rows} labels (one per row), received ${v.length}`);
  return v;
}

function rowsCols(shape: number[]): [number, number] {
  const cols = shape[shape.length - 1] ?? 1;
  return [cols === 0 ? 0 : sizeOf(shape) / cols, cols];
}

/** The causal softmax kernels, when the addon was built with them. */
function causalSoftmaxKernels(addon: NativeAddon): Record<string, NativeKernel> {
  const fwd = addon.causalSoftmax?.bind(addon), bwd = addon.causalSoftmaxBwd?.bind(addon), mm = addon.causalMatmul?.bind(addon);
  if (!fwd || !bwd) return {};
  const matmul: Record<string, NativeKernel> = !mm ? {} : {
    [FusedKernelName.causalMatmul]: ({ inputs, backend, attrs }: KernelArgs) => {
      const a = inputs['a']!, b = inputs['b']!;
      const mode = Number(attrs?.['mode']);
      const t = b.shape[b.shape.length - 2]!, d = b.shape[b.shape.length - 1]!;
      const batchShape = b.shape.slice(0, -2);
      const batch = sizeOf(batchShape);
      const outShape = [...batchShape, t, mode === 0 ? t : d];
      const out = allocF32(sizeOf(outShape));
      mm(mode, need(backend, a, 'a'), need(backend, b, 'b'), out, batch, t, d, Number(attrs?.['block'] ?? 32));
      return output(backend, outShape, out);
    },
  };
  return {
    ...matmul,
    [FusedKernelName.causalSoftmax]: ({ inputs, backend, attrs }: KernelArgs) => {
      const x = inputs['x']!;
      const [rows, cols] = rowsCols(x.shape);
      const out = allocF32(rows * cols);
      fwd(need(backend, x, 'x'), out, rows, cols, Number(attrs?.['scale'] ?? 1));
      return output(backend, x.shape.slice(), out);
    },
    [FusedKernelName.causalSoftmaxGrad]: ({ inputs, backend, attrs }: KernelArgs) => {
      const y = inputs['y']!;
      const [rows, cols] = rowsCols(y.shape);
      const dx = allocF32(rows * cols);
      bwd(need(backend, inputs['dy'], 'dy'), need(backend, y, 'y'), dx, rows, cols, Number(attrs?.['scale'] ?? 1));
      return output(backend, y.shape.slice(), dx);
    },
  };
}

/** Returns every fused kernel keyed by name. */
export function fusedKernels(addon: NativeAddon): Record<string, NativeKernel> {
  return {
    ...causalSoftmaxKernels(addon),
    [FusedKernelName.layerNorm]: ({ inputs, backend, attrs }: KernelArgs) => {
      const x = inputs['x']!;
      const [rows, cols] = rowsCols(x.shape);
      const y = allocF32(rows * cols), mean = allocF32(rows), rstd = allocF32(rows);
      addon.layerNormFwd(
        need(backend, x, 'x'), need(backend, inputs['gamma'], 'gamma'), need(backend, inputs['beta'], 'beta'),
        y, mean, rstd, rows, cols, Number(attrs?.['epsilon'] ?? 1e-5),
      );
      const statShape = [...x.shape.slice(0, -1), 1];
      return [output(backend, x.shape.slice(), y), output(backend, statShape, mean), output(backend, statShape, rstd)];
    },
    [FusedKernelName.layerNormGrad]: ({ inputs, backend }: KernelArgs) => {
      const x = inputs['x']!;
      const [rows, cols] = rowsCols(x.shape);
      const dx = allocF32(rows * cols), dg = allocF32(cols), db = allocF32(cols);
      addon.layerNormBwd(
        need(backend, inputs['dy'], 'dy'), need(backend, x, 'x'), need(backend, inputs['gamma'], 'gamma'),
        need(backend, inputs['mean'], 'mean'), need(backend, inputs['rstd'], 'rstd'), dx, dg, db, rows, cols,
      );
      return [output(backend, x.shape.slice(), dx), output(backend, [cols], dg), output(backend, [cols], db)];
    },
    [FusedKernelName.geluTanh]: ({ inputs, backend }: KernelArgs) => {
      const x = inputs['x']!;
      const out = allocF32(sizeOf(x.shape));
      addon.unary(UnaryOp.geluTanh, need(backend, x, 'x'), out);
      return output(backend, x.shape.slice(), out);
    },
    [FusedKernelName.geluTanhGrad]: ({ inputs, backend }: KernelArgs) => {
      const x = inputs['x']!;
      const dx = allocF32(sizeOf(x.shape));
      addon.geluTanhBwd(need(backend, inputs['dy'], 'dy'), need(backend, x, 'x'), dx);
      return output(backend, x.shape.slice(), dx);
    },
    [FusedKernelName.softmaxGrad]: ({ inputs, backend }: KernelArgs) => {
      const y = inputs['y']!;
      const [rows, cols] = rowsCols(y.shape);
      const dx = allocF32(rows * cols);
      addon.softmaxBwd(need(backend, inputs['dy'], 'dy'), need(backend, y, 'y'), dx, rows, cols);
      return output(backend, y.shape.slice(), dx);
    },
    [FusedKernelName.sparseXent]: ({ inputs, backend }: KernelArgs) => {
      const logits = inputs['logits']!;
      const [rows, cols] = rowsCols(logits.shape);
      const loss = allocF32(rows), probs = allocF32(rows * cols);
      addon.sparseXentFwd(need(backend, logits, 'logits'), labelsOf(backend, inputs['labels'], rows), loss, probs, rows, cols);
      return [output(backend, logits.shape.slice(0, -1), loss), output(backend, logits.shape.slice(), probs)];
    },
    [FusedKernelName.adamw]: ({ inputs, backend, attrs }: KernelArgs) => {
      const p = inputs['p']!;
      const n = sizeOf(p.shape);
      const scalars = attrs?.['scalars'];
      if (!Array.isArray(scalars) || scalars.length !== 10) throw new TypeError('FedloraAdamW: attrs.scalars must hold 10 numbers (see adamwScalars)');
      const pOut = allocF32(n), mOut = allocF32(n), vOut = allocF32(n);
      addon.adamw(
        need(backend, p, 'p'), need(backend, inputs['g'], 'g'), need(backend, inputs['m'], 'm'), need(backend, inputs['v'], 'v'),
        pOut, mOut, vOut, Float64Array.from(scalars as number[]),
      );
      return [output(backend, p.shape.slice(), pOut), output(backend, p.shape.slice(), mOut), output(backend, p.shape.slice(), vOut)];
    },
    [FusedKernelName.sparseXentGrad]: ({ inputs, backend }: KernelArgs) => {
      const probs = inputs['probs']!;
      const [rows, cols] = rowsCols(probs.shape);
      const dlogits = allocF32(rows * cols);
      addon.sparseXentBwd(
        need(backend, probs, 'probs'), labelsOf(backend, inputs['labels'], rows), need(backend, inputs['dloss'], 'dloss'),
        dlogits, rows, cols,
      );
      return output(backend, probs.shape.slice(), dlogits);
    },
  };
}
