/**
 * Test helpers: seeded random tensors and running the same computation with the native kernels
 * registered and with the pure-JS kernels, to compare them element by element.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { seededRandomBytes } from '@fedlora/tensor';
import { loadNativeCpu } from './native-binding.js';
import { registerNativeKernels, unregisterNativeKernels } from './register.js';

/** Float32 values uniform in [lo, hi) from a seeded keystream (reproducible, no Math.random). */
export function seededValues(seed: string, n: number, lo = -1, hi = 1): Float32Array {
  const bytes = seededRandomBytes(seed)(4 * n);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * (words[i]! / 2 ** 32);
  return out;
}

/** A seeded random float32 tensor. */
export function seededTensor(seed: string, shape: number[], lo = -1, hi = 1): tf.Tensor {
  return tf.tensor(seededValues(seed, shape.reduce((p, d) => p * d, 1), lo, hi), shape, 'float32');
}

/**
 * Runs `fn` on the cpu backend with the native kernels registered, then `pureFn` (default `fn`)
 * with the pure-JS kernels; returns both results.
 */
export async function nativeAndPure(
  fn: () => tf.Tensor | tf.Tensor[],
  pureFn: () => tf.Tensor | tf.Tensor[] = fn,
): Promise<{ native: Float32Array[]; pure: Float32Array[] }> {
  await tf.setBackend('cpu');
  const collect = (f: () => tf.Tensor | tf.Tensor[]): Float32Array[] =>
    tf.tidy(() => {
      const out = f();
      return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync() as Float32Array));
    });
  registerNativeKernels(tf);
  const native = collect(fn);
  unregisterNativeKernels(tf);
  const pure = collect(pureFn);
  return { native, pure };
}

/**
 * Normwise relative error max|a - b| / max|b| (the usual measure for GEMM-like results, where
 * single elements may cancel to near zero); infinity on a length or NaN-pattern mismatch.
 */
export function maxRelativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
      continue;
    }
    if (Number.isFinite(y)) scale = Math.max(scale, Math.abs(y));
    if (x === y) continue;
    worst = Math.max(worst, Math.abs(x - y));
  }
  return scale === 0 ? worst : worst / scale;
}

/** Why native tests are skipped on this machine, or null when the addon loaded. */
export function nativeSkipReason(): string | null {
  const status = loadNativeCpu();
  return status.available ? null : (status.reason ?? 'native addon unavailable');
}
