/**
 * Building blocks shared by the decoder families, written for tfjs' wasm and cpu backends: hidden
 * states are kept 2-D ([batch * time, features]) so every projection is one plain matmul, and
 * attention transposes K explicitly instead of asking matMul for `transposeB` (the wasm
 * backend's slow path, DESIGN.md).
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

/**
 * Scaled dot-product attention with a causal mask (Vaswani et al. 2017, eq. 1):
 * softmax(Q K^T / sqrt(d) + M) V, for q, k, v of shape [B, H, T, D]. On the native path the two
 * products skip the masked upper block triangle (`causalScores`, `causalApply`, forward and
 * backward) and the scale, mask and softmax are one fused kernel (`causalSoftmax`; `mask` is then
 * unused). Elsewhere Q is scaled before the product ([T, D] per
 * head, not [T, T]) and K is transposed explicitly (wasm's transposed matmul is its slow path).
 */
export function causalAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor4D {
  const d = q.shape[3];
  if (nativeKernelsActive()) return causalApply(causalSoftmax(causalScores(q, k), 1 / Math.sqrt(d)), v) as tf.Tensor4D;
  const qs = tf.mul(q, 1 / Math.sqrt(d));
  const scores = tf.add(tf.matMul(qs, tf.transpose(k, [0, 1, 3, 2])), mask);
  return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D;
}

/** Rotary tables cos/sin [T, D] as HF's LlamaRotaryEmbedding builds them (float32 like torch). */
export function ropeTables(t: number, headDim: number, theta: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(t * headDim);
  const sin = new Float32Array(t * headDim);
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / theta ** ((2 * i) / headDim);
  const f = new Float32Array(1);
  for (let p = 0; p < t; p++) {
    for (let i = 0; i < half; i++) {
      f[0] = p * invFreq[i]!; // torch forms the angle in float32
      const c = Math.cos(f[0]);
      const s = Math.sin(f[0]);
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + half + i] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [t, headDim]), sin: tf.tensor2d(sin, [t, headDim]) };
}

/** Applies rotary position embedding (Su et al. 2021) to x [B, H, T, D]: x cos + rotate_half(x) sin. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const d = x.shape[3];
  const [x1, x2] = tf.split(x, [d / 2, d / 2], 3);
  const rotated = tf.concat([tf.neg(x2!), x1!], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}

/** Repeats each of Hkv key/value heads n times: [B, Hkv, T, D] -> [B, Hkv * n, T, D] (GQA). */
export function repeatKv(x: tf.Tensor4D, n: number): tf.Tensor4D {
  if (n === 1) return x;
  const [b, h, t, d] = x.shape;
  // Rank 4, not 5: tfjs implements Tile's gradient only up to rank 4.
  return tf.reshape(tf.tile(tf.reshape(x, [b, h, 1, t * d]), [1, 1, n, 1]), [b, h * n, t, d]);
}
