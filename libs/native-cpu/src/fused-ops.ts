/**
 * Fused training ops with hand-written gradients. On the cpu backend with the native kernels
 * registered each is one native pass forward and one backward; elsewhere (wasm, pure cpu) the same
 * math is composed from tfjs ops and differentiated by tfjs, so results agree on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FusedKernelName } from './fused-kernels.js';

const GELU_C = Math.sqrt(2 / Math.PI);

function nativeFor(kernel: string): boolean {
  return tf.getBackend() === 'cpu' && tf.getKernel(kernel, 'cpu') !== undefined;
}

/** True when the current backend is cpu with the native kernels registered (the fused ops run natively). */
export function nativeKernelsActive(): boolean {
  return nativeFor(FusedKernelName.layerNorm);
}

type Forward = (inputs: tf.Tensor[], save: tf.GradSaveFunc) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
};

/** tf.customGrad over `arity` tensor inputs, with the save function passed separately. */
function customOp(arity: number, forward: Forward): (...inputs: tf.Tensor[]) => tf.Tensor {
  const f = (...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    forward(args.slice(0, arity) as tf.Tensor[], args[arity] as tf.GradSaveFunc);
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]);
}

function run(kernel: string, inputs: tf.NamedTensorMap, attrs: Record<string, number> = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(kernel, inputs, attrs) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

/**
 * Layer normalisation over the last axis (Ba, Kiros, Hinton 2016, eq. 4):
 * y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with the biased variance.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon = 1e-5): tf.Tensor {
  const cols = x.shape[x.shape.length - 1];
  if (gamma.shape[0] !== cols || beta.shape[0] !== cols) {
    throw new RangeError(`layerNorm: gamma and beta must have ${cols} elements, received ${gamma.shape[0]} and ${beta.shape[0]}`);
  }
  if (!nativeFor(FusedKernelName.layerNorm) || x.dtype !== 'float32') {
    return tf.tidy(() => {
      const mean = tf.mean(x, -1, true);
      const centred = tf.sub(x, mean);
      const variance = tf.mean(tf.square(centred), -1, true);
      return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
    });
  }
  const op = customOp(3, ([xi, g, b], save) => {
    const [y, mean, rstd] = run(FusedKernelName.layerNorm, { x: xi!, gamma: g!, beta: b! }, { epsilon });
    save([xi!, g!, mean!, rstd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sm, sr] = saved;
        return run(FusedKernelName.layerNormGrad, { dy, x: sx!, gamma: sg!, mean: sm!, rstd: sr! });
      },
    };
  });
  return op(x, gamma, beta);
}

/** GELU, tanh approximation (Hendrycks and Gimpel 2016, sec. 2), as GPT-2's `gelu_new`. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (!nativeFor(FusedKernelName.geluTanh) || x.dtype !== 'float32') {
    return tf.tidy(() => {
      // x^2 * x rather than pow(x, 3): Pow's gradient is log-based and wasm's Pow is a slow path
      const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), GELU_C);
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    });
  }
  const op = customOp(1, ([xi], save) => {
    save([xi!]);
    return {
      value: run(FusedKernelName.geluTanh, { x: xi! })[0]!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(FusedKernelName.geluTanhGrad, { dy, x: saved[0]! })[0]!,
    };
  });
  return op(x);
}

/**
 * Per-row softmax cross-entropy against integer labels: loss = logsumexp(logits) - logits[label].
 * Needs no one-hot tensor (for GPT-2's vocabulary that is 100 MB per 512 tokens); the gradient is
 * softmax(logits) - onehot(label), formed in place. Labels get no gradient.
 */
export function sparseSoftmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  const cols = logits.shape[logits.shape.length - 1]!;
  const rows = logits.size / cols;
  if (labels.dtype !== 'int32') throw new TypeError(`sparseSoftmaxCrossEntropy: labels must be int32, received ${labels.dtype}`);
  if (labels.size !== rows) {
    throw new RangeError(`sparseSoftmaxCrossEntropy: expected ${rows} labels (one per row of logits [${logits.shape}]), received ${labels.size}`);
  }
  if (!nativeFor(FusedKernelName.sparseXent) || logits.dtype !== 'float32') {
    return tf.tidy(() => {
      const lse = tf.logSumExp(logits, -1);
      const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.reshape(labels, logits.shape.slice(0, -1)), cols)), -1);
      return tf.sub(lse, picked);
    });
  }
  const op = customOp(1, ([li], save) => {
    const [loss, probs] = run(FusedKernelName.sparseXent, { logits: li!, labels });
    save([probs!, labels]); // kept by the engine: a caller's tidy may dispose labels before backprop
    return {
      value: loss!,
      gradFunc: (dloss: tf.Tensor, saved: tf.Tensor[]) =>
        run(FusedKernelName.sparseXentGrad, { probs: saved[0]!, labels: saved[1]!, dloss })[0]!,
    };
  });
  return op(logits);
}

/**
 * Gradient of Softmax that, on the cpu backend with native kernels, computes
 * dx = y * (dy - sum(dy * y)) in one native pass per row (tfjs' own gradient is four kernels:
 * Multiply, Sum, Multiply, Sub); elsewhere it defers to `original`.
 */
export function softmaxGradConfig(original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    kernelName: 'Softmax',
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const y = saved[0]!;
      const dim = Number((attrs as { dim?: number } | undefined)?.dim ?? -1);
      const last = dim === -1 || dim === y.rank - 1;
      const g = Array.isArray(dy) ? dy[0]! : dy;
      if (nativeFor(FusedKernelName.softmaxGrad) && last && g.dtype === 'float32' && y.dtype === 'float32') {
        return { logits: () => run(FusedKernelName.softmaxGrad, { dy: g, y })[0]! };
      }
      return original.gradFunc(dy, saved, attrs);
    },
  };
}

/**
 * A linear layer y = x w (+ bias), x [N, in], w [in, out] (or [out, in] with `transposeB`), bias
 * [out] or a full [N, out] (a residual or LoRA branch added for free). With native kernels
 * registered this is one `_FusedMatMul` kernel (BLAS product, bias added in place), differentiated
 * by `fusedMatMulGradConfig`, which computes only the gradients the tape asks for (a frozen w gets
 * none; tf.fused.matMul's customGrad would form all three). Elsewhere matMul + add.
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor, transposeB = false): tf.Tensor2D {
  if (!nativeKernelsActive() || tf.getGradient('_FusedMatMul') === undefined || x.dtype !== 'float32' || w.dtype !== 'float32') {
    const y = tf.matMul(x, w, false, transposeB);
    return (bias ? tf.add(y, bias) : y) as tf.Tensor2D;
  }
  const inputs: tf.NamedTensorMap = bias ? { a: x, b: w, bias } : { a: x, b: w };
  // biasShape is for the gradient (the bias itself is not saved); the kernels ignore it.
  const attrs = { transposeA: false, transposeB, activation: 'linear', biasShape: bias ? bias.shape : [] };
  return tf.engine().runKernel('_FusedMatMul', inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/**
 * Gradient of a rank-2 `_FusedMatMul` with linear activation, as `linear` runs it: per input only
 * on demand (BatchMatMul's gradient for a and b, the bias gradient is dy summed over the axes the
 * bias was broadcast along). tfjs-core registers none (its fused op brings its own customGrad).
 */
export const fusedMatMulGradConfig: tf.GradConfig = {
  kernelName: '_FusedMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const g = (Array.isArray(dy) ? dy[0]! : dy) as tf.Tensor2D;
    const [a, b] = saved as [tf.Tensor2D, tf.Tensor2D];
    const { transposeA, transposeB, activation, biasShape } = attrs as { transposeA: boolean; transposeB: boolean; activation?: string; biasShape?: number[] };
    if ((activation ?? 'linear') !== 'linear' || a.rank !== 2 || b.rank !== 2) {
      throw new Error(
        `_FusedMatMul gradient: only rank-2 operands with linear activation are supported (received ranks ${a.rank}, ${b.rank}, activation ${activation}); use tf.fused.matMul, which brings its own gradient`,
      );
    }
    const out = g.shape;
    const grads: Record<string, () => tf.Tensor> = {
      a: () => (transposeA ? tf.matMul(b, g, transposeB, true) : tf.matMul(g, b, false, !transposeB)),
      b: () => (transposeB ? tf.matMul(g, a, true, transposeA) : tf.matMul(a, g, !transposeA, false)),
    };
    grads['bias'] = () => {
      if (!biasShape) throw new Error('_FusedMatMul gradient: attribute biasShape missing (run the kernel through linear())');
      const axes = tf.backend_util.getReductionAxes(biasShape, out);
      // Same shape: dy itself, as a new tensor (the frugal and tfjs backward passes own each gradient).
      return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, biasShape);
    };
    return grads;
  },
};

/**
 * Causal attention weights softmax(scale * s + M) over the last axis of scores s [..., T, T], M
 * the additive causal mask (key j > query i masked; Vaswani et al. 2017, eq. 1 and Section 3.2.3).
 * With native kernels registered: one pass forward that never exponentiates the masked upper
 * half (it is exactly 0, as exp(-1e9) underflows in float32) and one backward,
 * dx = scale * y * (dy - sum(dy * y)); elsewhere the masked softmax composed from tfjs ops.
 */
export function causalSoftmax(scores: tf.Tensor, scale: number): tf.Tensor {
  const t = scores.shape[scores.rank - 1]!;
  if (scores.rank < 2 || scores.shape[scores.rank - 2] !== t) {
    throw new RangeError(`causalSoftmax: scores must end in a square [T, T] block, received shape [${scores.shape}]`);
  }
  if (!nativeFor(FusedKernelName.causalSoftmax) || scores.dtype !== 'float32') {
    return tf.tidy(() => {
      const mask = new Float32Array(t * t);
      for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) mask[i * t + j] = -1e9;
      return tf.softmax(tf.add(tf.mul(scores, scale), tf.tensor2d(mask, [t, t])));
    });
  }
  const op = customOp(1, ([x], save) => {
    const [y] = run(FusedKernelName.causalSoftmax, { x: x! }, { scale });
    save([y!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(FusedKernelName.causalSoftmaxGrad, { dy, y: saved[0]! }, { scale })[0]!,
    };
  });
  return op(scores);
}

/** Row block of the causal products: blocks above the diagonal block are skipped (T = 128: 10 of 16). */
const CAUSAL_BLOCK = 32;

function causalMatmul(mode: 0 | 1 | 2, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return run(FusedKernelName.causalMatmul, { a, b }, { mode, block: CAUSAL_BLOCK })[0]!;
}

function checkQkv(what: string, x: tf.Tensor, y: tf.Tensor, square: boolean): void {
  const t = y.shape[y.rank - 2];
  const ok = x.rank === y.rank && x.rank >= 2 && x.shape.slice(0, -2).join() === y.shape.slice(0, -2).join() &&
    x.shape[x.rank - 2] === t && x.shape[x.rank - 1] === (square ? t : y.shape[y.rank - 1]);
  if (!ok) throw new RangeError(`${what}: operand shapes [${x.shape}] and [${y.shape}] do not fit causal attention ([..., T, ${square ? 'T' : 'D'}] and [..., T, D])`);
}

/**
 * Attention scores Q K^T for q, k [..., T, D], for `causalSoftmax` only: natively just the lower
 * block triangle is computed (key blocks after the query's block are 0; entries above the diagonal
 * inside diagonal blocks are unmasked products), which causalSoftmax never reads. Elsewhere the
 * full product.
 */
export function causalScores(q: tf.Tensor, k: tf.Tensor): tf.Tensor {
  checkQkv('causalScores', q, k, false);
  if (!nativeFor(FusedKernelName.causalMatmul) || q.dtype !== 'float32' || k.dtype !== 'float32') return tf.matMul(q, k, false, true);
  const op = customOp(2, ([qi, ki], save) => {
    save([qi!, ki!]);
    return {
      value: causalMatmul(0, qi!, ki!),
      // dS is 0 above the diagonal (causalSoftmax's gradient): dQ = dS K, dK = dS^T Q on the lower triangle.
      gradFunc: (ds: tf.Tensor, saved: tf.Tensor[]) => [causalMatmul(1, ds, saved[1]!), causalMatmul(2, ds, saved[0]!)],
    };
  });
  return op(q, k);
}

/**
 * P V for attention weights p [..., T, T] that are 0 above the diagonal (causalSoftmax's output)
 * and v [..., T, D]: natively only the lower block triangle of P is read, forward and backward
 * (dP is formed on that triangle only, which is all causalSoftmax's gradient reads). Elsewhere matMul.
 */
export function causalApply(p: tf.Tensor, v: tf.Tensor): tf.Tensor {
  checkQkv('causalApply', p, v, true);
  if (!nativeFor(FusedKernelName.causalMatmul) || p.dtype !== 'float32' || v.dtype !== 'float32') return tf.matMul(p, v);
  const op = customOp(2, ([pi, vi], save) => {
    save([pi!, vi!]);
    return {
      value: causalMatmul(1, pi!, vi!),
      gradFunc: (dout: tf.Tensor, saved: tf.Tensor[]) => [causalMatmul(0, dout, saved[1]!), causalMatmul(2, saved[0]!, dout)],
    };
  });
  return op(p, v);
}
