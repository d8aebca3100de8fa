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

/** Mean cross-entropy in nats of logits [N, V] against integer targets [N]: -(1/N) sum_i log softmax(z_i)[y_i]. */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tokenLosses(logits, targets)), logits.shape[0]) as tf.Scalar);
}

/** Sum (not mean) of cross-entropy, for exact token-weighted averages over windows of unequal length. */
export function crossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tokenLosses(logits, targets)) as tf.Scalar);
}
