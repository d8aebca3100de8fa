/**
 * A GPT-2-shaped decoder with LoRA on the fused attention projection (PEFT's `c_attn` target),
 * written directly with tfjs-core ops so the LoRA training step can be benchmarked on any backend
 * before the model library lands. Frozen base weights are plain tensors (never copied per step);
 * only the LoRA factors are variables, so tfjs computes no gradient for the base.
 */
import * as tf from '@tensorflow/tfjs-core';
import { geluTanh, layerNorm, sparseSoftmaxCrossEntropy } from '@fedlora/native-cpu';

/** Shape of the benchmarked model and step. */
export interface Gpt2Shape {
  layers: number;
  dModel: number;
  heads: number;
  vocab: number;
  seq: number;
  batch: number;
  rank: number;
}

interface Layer {
  ln1g: tf.Tensor1D; ln1b: tf.Tensor1D;
  wAttn: tf.Tensor2D; bAttn: tf.Tensor1D;
  loraA: tf.Variable; loraB: tf.Variable;
  wProj: tf.Tensor2D; bProj: tf.Tensor1D;
  ln2g: tf.Tensor1D; ln2b: tf.Tensor1D;
  wFc: tf.Tensor2D; bFc: tf.Tensor1D;
  wOut: tf.Tensor2D; bOut: tf.Tensor1D;
}

/** The model's tensors; `trainable` lists the LoRA variables. */
export interface Gpt2Lora {
  shape: Gpt2Shape;
  wte: tf.Tensor2D;
  wpe: tf.Tensor2D;
  layers: Layer[];
  lnfg: tf.Tensor1D;
  lnfb: tf.Tensor1D;
  mask: tf.Tensor2D;
  trainable: tf.Variable[];
}

/** Builds the model with seeded N(0, 0.02) weights (GPT-2's initialisation); LoRA B starts at 0 like PEFT. */
export function buildGpt2Lora(shape: Gpt2Shape, seed = 1): Gpt2Lora {
  const { dModel: d, vocab, seq, rank } = shape;
  let s = seed;
  const normal = (dims: number[]) => tf.randomNormal(dims, 0, 0.02, 'float32', s++);
  const ones = (n: number) => tf.ones([n]) as tf.Tensor1D;
  const zeros = (n: number) => tf.zeros([n]) as tf.Tensor1D;
  const layers: Layer[] = [];
  for (let i = 0; i < shape.layers; i++) {
    layers.push({
      ln1g: ones(d), ln1b: zeros(d),
      wAttn: normal([d, 3 * d]) as tf.Tensor2D, bAttn: zeros(3 * d),
      loraA: tf.variable(normal([d, rank]), true, `lora_A_${i}`),
      loraB: tf.variable(tf.zeros([rank, 3 * d]), true, `lora_B_${i}`),
      wProj: normal([d, d]) as tf.Tensor2D, bProj: zeros(d),
      ln2g: ones(d), ln2b: zeros(d),
      wFc: normal([d, 4 * d]) as tf.Tensor2D, bFc: zeros(4 * d),
      wOut: normal([4 * d, d]) as tf.Tensor2D, bOut: zeros(d),
    });
  }
  const causal = new Float32Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) causal[i * seq + j] = -1e9;
  const mask = tf.tensor2d(causal, [seq, seq]);
  return {
    shape,
    wte: normal([vocab, d]) as tf.Tensor2D,
    wpe: normal([seq, d]) as tf.Tensor2D,
    layers,
    lnfg: ones(d),
    lnfb: zeros(d),
    mask,
    trainable: layers.flatMap((l) => [l.loraA, l.loraB]),
  };
}

function attention(m: Gpt2Lora, qkv: tf.Tensor2D): tf.Tensor2D {
  const { batch, seq, heads, dModel } = m.shape;
  const dh = dModel / heads;
  const [q, k, v] = tf.split(qkv, 3, 1).map((t) =>
    tf.transpose(tf.reshape(t, [batch, seq, heads, dh]), [0, 2, 1, 3]),
  ) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  // Scaling q ([.., seq, dh]) instead of the scores ([.., seq, seq]) halves that pass.
  const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(dh)), k, false, true), m.mask);
  const out = tf.matMul(tf.softmax(scores), v);
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch * seq, dModel]);
}

/** Mean next-token cross-entropy of `ids` ([batch, seq] int32) against `labels` (same shape). */
export function lossOf(m: Gpt2Lora, ids: tf.Tensor2D, labels: tf.Tensor1D, loraScale = 2): tf.Scalar {
  const { batch, seq, dModel } = m.shape;
  const tokens = tf.reshape(tf.gather(m.wte, tf.reshape(ids, [-1])), [batch, seq, dModel]);
  let h = tf.reshape(tf.add(tokens, m.wpe), [batch * seq, dModel]) as tf.Tensor2D;
  for (const l of m.layers) {
    const a = layerNorm(h, l.ln1g, l.ln1b) as tf.Tensor2D;
    // LoRA (Hu et al. 2021, eq. 3): x W + scale * (x A) B, scaled at rank r where it is cheapest.
    const lora = tf.matMul(tf.mul(tf.matMul(a, l.loraA as tf.Tensor2D), loraScale), l.loraB as tf.Tensor2D);
    const qkv = tf.add(tf.add(tf.matMul(a, l.wAttn), l.bAttn), lora) as tf.Tensor2D;
    h = tf.add(h, tf.add(tf.matMul(attention(m, qkv), l.wProj), l.bProj));
    const f = geluTanh(tf.add(tf.matMul(layerNorm(h, l.ln2g, l.ln2b) as tf.Tensor2D, l.wFc), l.bFc)) as tf.Tensor2D;
    h = tf.add(h, tf.add(tf.matMul(f, l.wOut), l.bOut));
  }
  const final = layerNorm(h, m.lnfg, m.lnfb) as tf.Tensor2D;
  const logits = tf.matMul(final, m.wte, false, true);
  return tf.mean(sparseSoftmaxCrossEntropy(logits, labels)) as tf.Scalar;
}

/** Disposes every tensor of the model. */
export function disposeGpt2Lora(m: Gpt2Lora): void {
  tf.dispose([m.wte, m.wpe, m.lnfg, m.lnfb, m.mask]);
  for (const l of m.layers) tf.dispose(Object.values(l) as tf.Tensor[]);
}
