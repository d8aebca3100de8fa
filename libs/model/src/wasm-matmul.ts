/**
 * Works around the wasm backend's slow transposed matmul (ARCHITECTURE.md: "explicit transpose is
 * ~1.75x faster"): the wasm BatchMatMul kernel is wrapped so that `transposeA`/`transposeB`
 * become an explicit Transpose kernel followed by a plain product. Backpropagation through matMul
 * asks for exactly these transposed products (dA = dY B^T, dB = A^T dY), so this is what makes
 * training steps fast on wasm; forward results are bit-identical up to summation order.
 */
import * as tf from '@tensorflow/tfjs-core';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: { disposeData(id: object): void }; attrs: Record<string, unknown> };
type KernelFn = (args: KernelArgs) => tf.TensorInfo;

let patched = false;

/** Re-registers wasm's BatchMatMul with explicit transposes; idempotent, no-op if wasm kernels are absent. */
export function patchWasmTransposedMatMul(): boolean {
  if (patched) return true;
  const mm = tf.getKernel('BatchMatMul', 'wasm');
  const tr = tf.getKernel('Transpose', 'wasm');
  if (!mm || !tr) return false;
  const matmul = mm.kernelFunc as unknown as KernelFn;
  const transpose = tr.kernelFunc as unknown as KernelFn;
  const swapLast = (x: tf.TensorInfo, backend: KernelArgs['backend']): tf.TensorInfo => {
    const perm = x.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 1], perm[r - 2]] = [perm[r - 2]!, perm[r - 1]!];
    return transpose({ inputs: { x }, backend, attrs: { perm } });
  };
  const wrapped: KernelFn = (args) => {
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return matmul(args);
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const at = transposeA ? swapLast(a, args.backend) : a;
    const bt = transposeB ? swapLast(b, args.backend) : b;
    const out = matmul({ ...args, inputs: { a: at, b: bt }, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    if (at !== a) args.backend.disposeData(at.dataId);
    if (bt !== b) args.backend.disposeData(bt.dataId);
    return out;
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: wrapped as unknown as tf.KernelFunc });
  patched = true;
  return true;
}
