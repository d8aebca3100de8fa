/**
 * Optimizer ops: one AdamW step per parameter tensor and the squared L2 norm of a list of tensors.
 * On the cpu backend with the native kernels registered the AdamW step is one native pass (one
 * kernel dispatch instead of ~14 element-wise ones); elsewhere it is the same float32 arithmetic
 * composed from tfjs ops, in the same order, so both paths give bit-identical results.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FusedKernelName } from './fused-kernels.js';
import { nativeAddon } from './native-binding.js';

/** Hyper-parameters of one AdamW step (step counts from 1). */
export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  /** The gradient is multiplied by this before use (averaging over micro-batches, clipping); default 1. */
  gradScale?: number;
}

/** The ten float32 scalars of the update, in the order native/optim.c reads them. */
export function adamwScalars(h: AdamWStep): Float64Array {
  if (!Number.isInteger(h.step) || h.step < 1) throw new RangeError(`adamw: step must be a positive integer, received ${h.step}`);
  return Float64Array.from([
    h.lr, h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, 1 - h.beta1 ** h.step, 1 - h.beta2 ** h.step, h.eps,
    1 - h.lr * h.weightDecay, h.gradScale ?? 1,
  ]);
}

function nativeActive(): boolean {
  return tf.getBackend() === 'cpu' && tf.getKernel(FusedKernelName.adamw, 'cpu') !== undefined;
}

/**
 * One AdamW step (Loshchilov & Hutter 2019, Algorithm 2) in torch.optim.AdamW's order:
 * g' = s g; m' = b1 m + (1 - b1) g'; v' = b2 v + (1 - b2) g'^2;
 * p' = p (1 - lr wd) - lr (m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps).
 * Returns new tensors [p', m', v'] (the caller assigns them to its variables).
 */
export function adamwUpdate(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, h: AdamWStep): [tf.Tensor, tf.Tensor, tf.Tensor] {
  for (const [name, t] of [['gradient', g], ['m', m], ['v', v]] as const) {
    if (!tf.util.arraysEqual(t.shape, p.shape)) throw new RangeError(`adamw: ${name} must have the parameter's shape [${p.shape}], received [${t.shape}]`);
  }
  const s = adamwScalars(h);
  if (nativeActive() && [p, g, m, v].every((t) => t.dtype === 'float32')) {
    const out = tf.engine().runKernel(FusedKernelName.adamw, { p, g, m, v }, { scalars: [...s] }) as unknown as tf.Tensor[];
    return [out[0]!, out[1]!, out[2]!];
  }
  return tf.tidy(() => {
    const gs = tf.mul(g, s[9]!);
    const m1 = tf.add(tf.mul(m, s[1]!), tf.mul(gs, s[2]!));
    const v1 = tf.add(tf.mul(v, s[3]!), tf.mul(tf.mul(gs, gs), s[4]!));
    const denom = tf.add(tf.sqrt(tf.div(v1, s[6]!)), s[7]!);
    const update = tf.div(tf.div(m1, s[5]!), denom);
    const p1 = tf.sub(tf.mul(p, s[8]!), tf.mul(update, s[0]!));
    return [p1, m1, v1] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}

/**
 * sum_i ||t_i||^2 over float32 tensors, as a host number (for global-norm gradient clipping).
 * Natively one pass per tensor, accumulated in double, with no tensor created; elsewhere
 * tfjs' sum of squares.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[]): number {
  if (tensors.length === 0) return 0;
  const addon = nativeActive() ? nativeAddon() : null;
  if (addon && tensors.every((t) => t.dtype === 'float32')) {
    const backend = tf.backend() as unknown as { data: { get(id: object): { values?: unknown } } };
    let total = 0;
    for (const t of tensors) {
      const values = backend.data.get(t.dataId).values;
      if (!(values instanceof Float32Array) || values.length !== t.size) return pureSumOfSquares(tensors);
      total += addon.sumSquares(values);
    }
    return total;
  }
  return pureSumOfSquares(tensors);
}

function pureSumOfSquares(tensors: readonly tf.Tensor[]): number {
  const s = tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.square(t)))));
  const out = s.dataSync()[0]!;
  s.dispose();
  return out;
}
