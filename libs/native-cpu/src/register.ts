/**
 * Registering the native kernels into the tfjs `cpu` backend in place of its pure-JS kernels, and
 * restoring them. Each native kernel keeps the original as its fallback for dtypes and shapes it
 * does not handle, so registering never changes what programs can run, only how fast.
 */
import '@tensorflow/tfjs-backend-cpu';
import type { GradConfig, KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { nativeAddon } from './native-binding.js';
import { withFallback, type KernelRegistry, type NativeKernel } from './kernel-support.js';
import { batchMatMulKernel, fusedMatMulKernel } from './matmul-kernels.js';
import { BINARY_KERNELS, UNARY_KERNELS, binaryKernel, unaryKernel } from './elementwise-kernels.js';
import { REDUCE_KERNELS, reduceKernel, softmaxKernel } from './reduce-kernels.js';
import { transposeKernel } from './transpose-kernel.js';
import { fusedKernels } from './fused-kernels.js';
import { fusedMatMulGradConfig, softmaxGradConfig } from './fused-ops.js';
import { disableBufferPool, enableBufferPool, type BufferPoolOptions } from './buffer-pool.js';
import { concatKernel, gatherKernel, sliceKernel, splitVKernel } from './slice-kernels.js';
import type { NativeAddon } from './native-binding.js';

const BACKEND = 'cpu';
/** Kernels we replaced, with the configuration that was registered before (undefined: none). */
const originals = new Map<string, KernelConfig | undefined>();
/** Gradients we replaced, with the configuration registered before. */
const originalGradients = new Map<string, GradConfig>();
/** Gradients we registered where there was none (see fused-ops.ts `linear`). */
const addedGradients = new Set<string>();

function nativeTable(addon: NativeAddon): Record<string, NativeKernel> {
  const table: Record<string, NativeKernel> = {
    BatchMatMul: batchMatMulKernel(addon),
    _FusedMatMul: fusedMatMulKernel(addon),
    Softmax: softmaxKernel(addon),
    Transpose: transposeKernel(addon),
    Slice: sliceKernel(addon),
    SplitV: splitVKernel(addon),
    Concat: concatKernel(addon),
    GatherV2: gatherKernel(addon),
  };
  for (const [name, op] of Object.entries(BINARY_KERNELS)) table[name] = binaryKernel(addon, op);
  for (const [name, op] of Object.entries(UNARY_KERNELS)) table[name] = unaryKernel(addon, op);
  for (const [name, [op, attr]] of Object.entries(REDUCE_KERNELS)) table[name] = reduceKernel(addon, op, attr);
  return { ...table, ...fusedKernels(addon) };
}

/**
 * Replaces the cpu backend's kernels with native ones; returns the kernel names replaced (empty
 * when the addon is unavailable, see loadNativeCpu). Also routes Softmax's gradient through one
 * native kernel when running on the cpu backend (other backends keep tfjs' gradient), and recycles
 * the native kernels' output buffers (see buffer-pool.ts; `bufferPool: false` turns that off).
 * Idempotent.
 */
export function registerNativeKernels(tf: KernelRegistry, options: { bufferPool?: BufferPoolOptions | false } = {}): string[] {
  const addon = nativeAddon();
  if (!addon) return [];
  if (options.bufferPool !== false) enableBufferPool(tf.findBackend(BACKEND), options.bufferPool ?? {});
  const table = nativeTable(addon);
  for (const [name, kernel] of Object.entries(table)) {
    if (!originals.has(name)) originals.set(name, tf.getKernel(name, BACKEND));
    const fallback: KernelFunc | undefined = originals.get(name)?.kernelFunc;
    if (tf.getKernel(name, BACKEND)) tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: withFallback(kernel, fallback, name) });
  }
  const softmaxGrad = tf.getGradient('Softmax');
  if (softmaxGrad && !originalGradients.has('Softmax')) {
    originalGradients.set('Softmax', softmaxGrad);
    tf.registerGradient(softmaxGradConfig(softmaxGrad));
  }
  if (!tf.getGradient('_FusedMatMul')) {
    tf.registerGradient(fusedMatMulGradConfig);
    addedGradients.add('_FusedMatMul');
  }
  return Object.keys(table);
}

/** Restores the kernels that registerNativeKernels replaced; returns their names. */
export function unregisterNativeKernels(tf: KernelRegistry): string[] {
  disableBufferPool();
  const names = [...originals.keys()];
  for (const [name, original] of originals) {
    if (tf.getKernel(name, BACKEND)) tf.unregisterKernel(name, BACKEND);
    if (original) tf.registerKernel(original);
  }
  originals.clear();
  for (const [name, grad] of originalGradients) {
    tf.unregisterGradient(name);
    tf.registerGradient(grad);
  }
  originalGradients.clear();
  for (const name of addedGradients) tf.unregisterGradient(name);
  addedGradients.clear();
  return names;
}
