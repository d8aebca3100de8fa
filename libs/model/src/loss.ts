/** Next-token cross-entropy, written with one-hot targets so its gradient needs no scatter kernel. */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Mean cross-entropy in nats of logits [N, V] against integer targets [N]:
 * -(1/N) sum_i log softmax(z_i)[y_i]. The one-hot product (instead of gather) keeps the
 * backward pass on kernels every backend has (wasm lacks UnsortedSegmentSum).
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const v = logits.shape[1];
    const logp = tf.logSoftmax(logits);
    const oneHot = tf.oneHot(tf.cast(targets, 'int32'), v);
    return tf.neg(tf.div(tf.sum(tf.mul(logp, oneHot)), logits.shape[0])) as tf.Scalar;
  });
}

/** Sum (not mean) of cross-entropy, for exact token-weighted averages over windows of unequal length. */
export function crossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.mul(crossEntropy(logits, targets), logits.shape[0]) as tf.Scalar);
}
