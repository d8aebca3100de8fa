/**
 * Plumbing shared by the native kernels: reading the cpu backend's TypedArrays, making outputs and
 * delegating to the pure-JS kernel that was registered before ours.
 */
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The subset of tfjs-backend-cpu's MathBackendCPU the kernels use (plain TypedArray storage). */
export interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

/** Arguments every kernel receives, with the backend narrowed to the cpu backend. */
export interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: CpuBackendLike;
  attrs?: NamedAttrMap;
}

/** The tfjs-core functions registerNativeKernels needs (pass the `tf` namespace). */
export interface KernelRegistry {
  getKernel(kernelName: string, backendName: string): KernelConfig | undefined;
  registerKernel(config: KernelConfig): void;
  unregisterKernel(kernelName: string, backendName: string): void;
  getGradient(kernelName: string): GradConfig | undefined;
  registerGradient(config: GradConfig): void;
  unregisterGradient(kernelName: string): void;
  findBackend(backendName: string): unknown;
}

/** A native kernel: returns null to ask for the pure-JS fallback (other dtypes, empty tensors). */
export type NativeKernel = (args: KernelArgs) => TensorInfo | TensorInfo[] | null;

/** Float32 values of a tensor on the cpu backend, or null when it holds another dtype. */
export function f32(backend: CpuBackendLike, t: TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : null;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A float32 output tensor of the given shape and values. */
export function output(backend: CpuBackendLike, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', values);
}

/** Wraps a native kernel so it falls back to `fallback` whenever it returns null. */
export function withFallback(kernel: NativeKernel, fallback: KernelFunc | undefined, name: string): KernelFunc {
  return (args) => {
    const result = kernel(args as unknown as KernelArgs);
    if (result !== null) return result;
    if (!fallback) throw new TypeError(`${name}: no native path for these inputs and no pure-JS kernel to fall back to`);
    return fallback(args);
  };
}
