/**
 * Building blocks shared by the decoder families, written for tfjs' wasm and cpu backends: hidden
 * states are kept 2-D ([batch * time, features]) so every projection is one plain matmul, and
 * attention transposes K explicitly instead of asking matMul for `transposeB` (the wasm
 * backend's slow path, ARCHITECTURE.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { causalApply, causalScores, causalSoftmax, geluTanh, layerNorm as fusedLayerNorm, nativeKernelsActive } from '@fedlora/native-cpu';

/**
 * LayerNorm over the last axis (Ba et al. 2016, eq. 4), biased variance as torch.nn.LayerNorm.
 * One native pass forward and one backward when native cpu kernels are registered (no [N, d]
 * temporaries for the mean, centred values and variance); the same math from tfjs ops elsewhere.
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor2D {
  return fusedLayerNorm(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, eps) as tf.Tensor2D;
}

/** RMSNorm (Zhang & Sennrich 2019) as LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w. */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor, eps: number): tf.Tensor2D {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight) as tf.Tensor2D;
}

/**
 * GPT-2's `gelu_new`: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Hendrycks & Gimpel 2016),
 * fused (forward and backward each one pass) on native cpu, composed from tfjs ops elsewhere.
 */
export function geluNew(x: tf.Tensor): tf.Tensor {
  return geluTanh(x);
}

/** SiLU / swish: x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, a large negative number above. */
export function causalMask(t: number): tf.Tensor2D {
  const data = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) data[i * t + j] = -1e9;
  return tf.tensor2d(data, [t, t]);
}

/** [B*T, H*D] -> [B, H, T, D]. */
export function splitHeads(x: tf.Tensor, b: number, t: number, h: number, d: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [b, t, h, d]), [0, 2, 1, 3]);
}

/** [B, H, T, D] -> [B*T, H*D]. */
export function mergeHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [b, h, t, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b * t, h * d]);
}

/** Additive sliding-window causal mask [T, T]: key j is visible to query i iff i - window < j <= i. */
export function slidingWindowMask(t: number, window: number): tf.Tensor2D {
  const data = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j < t; j++) if (j > i || j <= i - window) data[i * t + j] = -1e9;
  return tf.tensor2d(data, [t, t]);
}

/** How one attention layer scores: scale of Q K^T, optional soft-capping, and its additive mask. */
export interface AttentionOptions {
  /** Multiplier of Q K^T (default 1/sqrt(D)). */
  scale?: number;
  /** Gemma 2's attention logit soft-capping: scores <- c tanh(scores / c), before the mask. */
  softcap?: number;
  /** False when `mask` is more than the plain causal mask (a sliding window shorter than T). */
  plainCausal?: boolean;
}

/**
 * Scaled dot-product attention with a causal mask (Vaswani et al. 2017, eq. 1):
 * softmax(Q K^T * scale + M) V, for q, k, v of shape [B, H, T, D]. On the native path the two
 * products skip the masked upper block triangle (`causalScores`, `causalApply`, forward and
 * backward) and the scale, mask and softmax are one fused kernel (`causalSoftmax`; `mask` is then
 * unused). The fused kernel knows only the plain causal mask and no soft-capping, so layers with
 * either run the composed path (see `nativeFallbacks`). There Q is scaled before the product
 * ([T, D] per head, not [T, T]) and K is transposed explicitly (wasm's transposed matmul is its
 * slow path).
 */
export function causalAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D, opts: AttentionOptions = {}): tf.Tensor4D {
  const scale = opts.scale ?? 1 / Math.sqrt(q.shape[3]);
  if (nativeKernelsActive() && opts.softcap === undefined && opts.plainCausal !== false) {
    return causalApply(causalSoftmax(causalScores(q, k), scale), v) as tf.Tensor4D;
  }
  let scores: tf.Tensor = tf.matMul(tf.mul(q, scale), tf.transpose(k, [0, 1, 3, 2]));
  if (opts.softcap !== undefined) scores = softcap(scores, opts.softcap);
  return tf.matMul(tf.softmax(tf.add(scores, mask)), v) as tf.Tensor4D;
}

/** Soft-capping (Gemma 2): c tanh(x / c), a smooth clamp of x to (-c, c). */
export function softcap(x: tf.Tensor, c: number): tf.Tensor {
  return tf.mul(tf.tanh(tf.mul(x, 1 / c)), c);
}

/** Repeats each of Hkv key/value heads n times: [B, Hkv, T, D] -> [B, Hkv * n, T, D] (GQA). */
export function repeatKv(x: tf.Tensor4D, n: number): tf.Tensor4D {
  if (n === 1) return x;
  const [b, h, t, d] = x.shape;
  // Rank 4, not 5: tfjs implements Tile's gradient only up to rank 4.
  return tf.reshape(tf.tile(tf.reshape(x, [b, h, 1, t * d]), [1, 1, n, 1]), [b, h * n, t, d]);
}
