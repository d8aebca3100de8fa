/**
 * Next-token cross-entropy against integer targets, without one-hot targets on the native cpu path
 * (for GPT-2's vocabulary a one-hot [512, 50257] batch is 100 MB, and log-softmax, the product and
 * their gradients are each as large again).
 */
import * as tf from '@tensorflow/tfjs-core';
import { sparseSoftmaxCrossEntropy } from '@fedlora/native-cpu';

/**
 * Per-token cross-entropy in nats, logsumexp(z_i) - z_i[y_i], of logits [N, V] against targets [N].
 * Native cpu: one fused pass forward and one backward (softmax(z) - onehot(y), formed in place).
 * Elsewhere the same math from tfjs ops, with a one-hot product instead of gather so the backward
 * pass needs no scatter kernel (wasm lacks UnsortedSegmentSum).
 */
function tokenLosses(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const labels = targets.dtype === 'int32' ? targets : tf.cast(targets, 'int32');
  return sparseSoftmaxCrossEntropy(logits, labels) as tf.Tensor1D;
}

/**
 * Mean cross-entropy in nats of logits [N, V] against integer targets [N]: -(1/N) sum_i log softmax(z_i)[y_i].
 * With a loss mask `weights` [N] of 0/1 (instruction tuning: prompt and padding tokens 0) it is the
 * mean over the weighted tokens, -(sum_i w_i log softmax(z_i)[y_i]) / sum_i w_i, and a token of
 * weight 0 contributes exactly zero gradient.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    if (!weights) return tf.div(tf.sum(tokenLosses(logits, targets)), logits.shape[0]) as tf.Scalar;
    return tf.div(tf.sum(tf.mul(tokenLosses(logits, targets), weights)), tf.maximum(tf.sum(weights), 1)) as tf.Scalar;
  });
}

/** Sum (not mean) of cross-entropy (over the tokens of weight 1 with `weights`), for exact token-weighted averages. */
export function crossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(weights ? tf.mul(tokenLosses(logits, targets), weights) : tokenLosses(logits, targets)) as tf.Scalar);
}

/** Per-token cross-entropy in nats [N] (times `weights` when given), e.g. for per-example log-likelihoods. */
export function crossEntropyPerToken(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => (weights ? tf.mul(tokenLosses(logits, targets), weights) : tokenLosses(logits, targets)) as tf.Tensor1D);
}
