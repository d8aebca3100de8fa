/**
 * Per-example clipping for LoRA from ONE batched forward and backward pass (ghost clipping: Li,
 * Tramer, Liang, Hashimoto 2022, "Large Language Models Can Be Strong Differentially Private
 * Learners", Section 4; book-keeping: Bu et al. 2023, "Differentially Private Optimization on
 * Large Model at Small Cost", Algorithm 1). LoRA layers are linear in A and B, so example i's
 * gradients are dB_i = s G_i^T (X_i A^T) and dA_i = s (G_i B)^T X_i, where X_i and G_i are the rows
 * of the layer's input and output gradient that belong to example i (`loraLayerTraces`). The
 * squared norms and the clipped sum sum_i min(1, C / ||g_i||) g_i come from those factors, either
 * on the device (default: batched matmuls, float32) or on the host in float64 with libs/privacy's
 * `loraPerExampleGradNormsSq` and `loraClippedGradSums`; or the clipped sum comes from a second
 * backward pass of the loss re-weighted by the clip factors (`reweighted-backward`).
 *
 * For LoRA the per-example factors s G_i^T H_i ([dOut, r]) and s P_i^T X_i ([r, dIn]) are small,
 * so forming them is cheaper than the Gram ("ghost norm") form <G_i G_i^T, H_i H_i^T> whenever
 * T > r (T^2 (dOut + r) versus T dOut r): the device path forms them for the whole batch in two
 * batched matmuls per layer and keeps only their squared norms (the host path picks the cheaper
 * form per factor, `gramProductNormSq`). Neither materialises the full per-example gradient of a
 * backward pass per example.
 *
 * Precision: the device path forms norms and sums in float32 with two different products, so an
 * example's contribution to the sum meets ||c_i g_i|| <= C up to float32 rounding (about 1e-6
 * relative; tests check 1e-4 against per-example passes). `compute: 'host'` forms both from the
 * same X, G, H, P in float64, as the per-example reference does from its float32 gradients.
 *
 * Examples stay separate in the batch: attention is causal within each row of ids and nothing
 * mixes rows. Sequences of unequal length are right-padded; the loss ignores padded targets and
 * padded positions come after every real one, so their output gradients are exactly zero and
 * they add nothing to any gradient or norm.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { clipFactors, loraClippedGradSums, loraPerExampleGradNormsSq, type LoraNormInputs } from '@fedlora/privacy';
import {
  crossEntropy,
  crossEntropySum,
  disposeLoraTraces,
  loraLayerTraces,
  loraRuntime,
  peftName,
  valueAndGradsFrugal,
  type CausalLM,
  type LoraConfig,
  type LoraLayerTrace,
  type LoraRuntime,
} from '@fedlora/model';

/**
 * How the clipped sum is formed once the clip factors are known: `traces` from the recorded
 * inputs and output gradients (no second pass), or `reweighted-backward`, a second forward and
 * backward pass of sum_i c_i L_i (Li et al. 2022's ghost clipping proper).
 */
export type ClippedSumMethod = 'traces' | 'reweighted-backward';

/** Where norms and the clipped sum are computed from the traces: tfjs (float32) or the host (float64, libs/privacy). */
export type GhostCompute = 'device' | 'host';

/** Options of `ghostClippedLoraGradSum`. */
export interface GhostClipOptions {
  clipNorm: number;
  /** Seed of the batch's LoRA dropout masks (used by every pass of this step). */
  dropoutSeed: number;
  /** Default `traces`. */
  clippedSum?: ClippedSumMethod;
  /** Default `device`. */
  compute?: GhostCompute;
}

/** Result of `ghostClippedLoraGradSum`. */
export interface GhostClipResult {
  /** sum_i c_i g_i over the batch, unnoised, in the order and shapes of `vars`. */
  clippedSum: NamedTensors;
  /** ||g_i||^2 of each example's LoRA gradient (all layers). */
  normsSq: Float64Array;
  /** c_i = min(1, C / ||g_i||). */
  factors: Float64Array;
  /** sum_i L_i, each example's mean next-token loss (not private: local diagnostics). */
  lossSum: number;
}

/** A right-padded batch: ids [B, T], targets [B*T], and each sequence's number of targets. */
export function padBatch(sequences: readonly Int32Array[]): { inputs: tf.Tensor2D; targets: tf.Tensor1D; lengths: number[]; seqLen: number } {
  const lengths = sequences.map((s, i) => {
    if (s.length < 2) throw new RangeError(`every sequence needs at least 2 tokens (an input and a target), sequence ${i} holds ${s.length}`);
    return s.length - 1;
  });
  const T = Math.max(...lengths);
  const inp = new Int32Array(sequences.length * T);
  const tgt = new Int32Array(sequences.length * T);
  sequences.forEach((s, i) => {
    inp.set(s.subarray(0, lengths[i]), i * T);
    tgt.set(s.subarray(1), i * T);
  });
  return { inputs: tf.tensor2d(inp, [sequences.length, T], 'int32'), targets: tf.tensor1d(tgt, 'int32'), lengths, seqLen: T };
}

/**
 * sum_i w_i L_i with L_i example i's mean loss over its own targets (padding excluded). Equal
 * lengths and unit weights take one fused loss over the whole batch.
 */
export function weightedExampleLoss(logits: tf.Tensor2D, targets: tf.Tensor1D, lengths: readonly number[], seqLen: number, weights?: ArrayLike<number>): tf.Scalar {
  return tf.tidy(() => {
    if (!weights && lengths.every((l) => l === seqLen)) return tf.div(crossEntropySum(logits, targets), seqLen) as tf.Scalar;
    const terms: tf.Scalar[] = [];
    lengths.forEach((len, i) => {
      const w = weights ? weights[i]! : 1;
      if (w === 0) return;
      const l = tf.slice(logits, [i * seqLen, 0], [len, logits.shape[1]]) as tf.Tensor2D;
      const t = tf.slice(targets, [i * seqLen], [len]) as tf.Tensor1D;
      terms.push(tf.mul(crossEntropy(l, t), w) as tf.Scalar);
    });
    return (terms.length ? tf.addN(terms) : tf.mul(tf.sum(logits), 0)) as tf.Scalar;
  });
}

/**
 * One DP-SGD step's clipped gradient sum (Abadi et al. 2016, Algorithm 1, lines 4-6, before the
 * noise) for the sampled `sequences`, with every example's LoRA gradient clipped to `clipNorm`.
 */
export async function ghostClippedLoraGradSum(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  sequences: readonly Int32Array[],
  o: GhostClipOptions,
): Promise<GhostClipResult> {
  const method = o.clippedSum ?? 'traces';
  if (method !== 'traces' && method !== 'reweighted-backward') throw new RangeError(`clippedSum must be "traces" or "reweighted-backward", received ${JSON.stringify(method)}`);
  if (!(o.clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${o.clipNorm}`);
  if (sequences.length === 0) {
    const zero: NamedTensors = new Map([...vars].map(([n, v]) => [n, { shape: [...v.shape], data: new Float32Array(v.size) }]));
    return { clippedSum: zero, normsSq: new Float64Array(0), factors: new Float64Array(0), lossSum: 0 };
  }
  const compute = o.compute ?? 'device';
  if (compute !== 'device' && compute !== 'host') throw new RangeError(`compute must be "device" or "host", received ${JSON.stringify(compute)}`);
  const rt = loraRuntime(model, lora, new Map(vars));
  const batch = padBatch(sequences);
  const fwd = { training: true, seed: o.dropoutSeed };
  try {
    const traces = loraLayerTraces(model, batch.inputs, rt, (logits) => weightedExampleLoss(logits, batch.targets, batch.lengths, batch.seqLen), fwd);
    let lossSum: number;
    let normsSq: Float64Array;
    let factors: Float64Array;
    let clippedSum: NamedTensors | undefined;
    try {
      lossSum = (await traces.loss.data())[0]!;
      const host = compute === 'host' ? await normInputs(rt, traces.layers, sequences.length, batch.seqLen) : undefined;
      normsSq = host ? hostNormsSq(host, sequences.length) : await deviceNormsSq(rt, traces.layers, sequences.length, batch.seqLen);
      normsSq.forEach((n, i) => {
        if (!Number.isFinite(n)) throw new RangeError(`example ${i} has a non-finite gradient (squared norm ${n}); lower the learning rate or check the data`);
      });
      factors = clipFactors(normsSq, o.clipNorm);
      if (method === 'traces') clippedSum = host ? hostClippedSum(vars, host, factors) : await deviceClippedSum(vars, rt, traces.layers, factors, batch.seqLen);
    } finally {
      disposeLoraTraces(traces);
    }
    clippedSum ??= await sumByReweightedBackward(model, lora, vars, batch, factors, fwd);
    return { clippedSum, normsSq, factors, lossSum };
  } finally {
    tf.dispose([batch.inputs, batch.targets]);
  }
}

/**
 * ||g_i||^2 summed over the layers, on the device: per layer the batch's s G_i^T H_i and
 * s P_i^T X_i in two batched matmuls, squared and summed per example; one download of [B].
 */
async function deviceNormsSq(rt: LoraRuntime, traces: Map<string, LoraLayerTrace>, batch: number, seqLen: number): Promise<Float64Array> {
  const total = tf.tidy(() => {
    const perLayer = [...traces].map(([path, { input, outputGrad }]) => {
      const { a, b } = rt.modules.get(path)!;
      const h = tf.reshape(tf.matMul(input, a, false, true), [batch, seqLen, a.shape[0]]);
      const p = tf.reshape(tf.matMul(outputGrad, b), [batch, seqLen, a.shape[0]]);
      const dB = tf.matMul(tf.reshape(outputGrad, [batch, seqLen, b.shape[0]]), h, true, false); // [B, dOut, r]
      const dA = tf.matMul(p, tf.reshape(input, [batch, seqLen, a.shape[1]]), true, false); // [B, r, dIn]
      return tf.add(tf.sum(tf.square(dB), [1, 2]), tf.sum(tf.square(dA), [1, 2]));
    });
    return tf.mul(perLayer.length > 1 ? tf.addN(perLayer) : perLayer[0]!, rt.scale * rt.scale);
  });
  const out = Float64Array.from((await total.data()) as Float32Array);
  total.dispose();
  return out;
}

/** sum_i c_i g_i on the device: dB = s (c G)^T H and dA = s (c G B)^T X per layer (c repeated over each example's rows). */
async function deviceClippedSum(vars: ReadonlyMap<string, tf.Variable>, rt: LoraRuntime, traces: Map<string, LoraLayerTrace>, factors: Float64Array, seqLen: number): Promise<NamedTensors> {
  const rowFactors = new Float32Array(factors.length * seqLen);
  factors.forEach((c, i) => rowFactors.fill(c * rt.scale, i * seqLen, (i + 1) * seqLen));
  const device = tf.tidy(() => {
    const c = tf.tensor2d(rowFactors, [rowFactors.length, 1]);
    const out: Record<string, tf.Tensor> = {}; // a plain object: tidy keeps the tensors of objects, not of Maps
    for (const [path, { input, outputGrad }] of traces) {
      const { a, b } = rt.modules.get(path)!;
      const gc = tf.mul(outputGrad, c);
      out[peftName(path, 'B')] = tf.matMul(gc, tf.matMul(input, a, false, true), true, false);
      out[peftName(path, 'A')] = tf.matMul(tf.matMul(gc, b), input, true, false);
    }
    return out;
  });
  try {
    const sums = new Map<string, Float32Array>();
    for (const [name, t] of Object.entries(device)) sums.set(name, (await t.data()) as Float32Array);
    return inVarOrder(vars, sums);
  } finally {
    tf.dispose(Object.values(device));
  }
}

function hostNormsSq(layers: Map<string, LoraNormInputs>, batch: number): Float64Array {
  const normsSq = new Float64Array(batch);
  for (const x of layers.values()) {
    const { total } = loraPerExampleGradNormsSq(x);
    for (let i = 0; i < batch; i++) normsSq[i] = normsSq[i]! + total[i]!;
  }
  return normsSq;
}

/** Host copies of each layer's X, G, A, B and of H = X A^T, P = G B (formed on the device). */
async function normInputs(rt: LoraRuntime, traces: Map<string, LoraLayerTrace>, batch: number, seqLen: number): Promise<Map<string, LoraNormInputs>> {
  const out = new Map<string, LoraNormInputs>();
  for (const [path, { input, outputGrad }] of traces) {
    const { a, b } = rt.modules.get(path)!;
    const [h, p] = tf.tidy(() => [tf.matMul(input, a, false, true), tf.matMul(outputGrad, b)]);
    const host = await Promise.all([input, outputGrad, a, b, h!, p!].map(async (t) => (await t.data()) as Float32Array));
    tf.dispose([h!, p!]);
    out.set(path, {
      inputs: host[0]!,
      outputGrads: host[1]!,
      a: host[2]!,
      b: host[3]!,
      hidden: host[4]!,
      hiddenGrad: host[5]!,
      batch,
      seqLen,
      dIn: a.shape[1],
      dOut: b.shape[0],
      rank: a.shape[0],
      scaling: rt.scale,
    });
  }
  return out;
}

function hostClippedSum(vars: ReadonlyMap<string, tf.Variable>, layers: Map<string, LoraNormInputs>, factors: Float64Array): NamedTensors {
  const sums = new Map<string, Float32Array>();
  for (const [path, x] of layers) {
    const { dA, dB } = loraClippedGradSums(x, factors);
    sums.set(peftName(path, 'A'), dA);
    sums.set(peftName(path, 'B'), dB);
  }
  return inVarOrder(vars, sums);
}

/** The sums in the order and shapes of `vars` (the noise is drawn tensor by tensor in that order). */
function inVarOrder(vars: ReadonlyMap<string, tf.Variable>, sums: Map<string, Float32Array>): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, v] of vars) {
    const data = sums.get(name);
    if (!data) throw new Error(`ghost clipping: no LoRA layer produced the gradient of "${name}"`);
    out.set(name, { shape: [...v.shape], data });
  }
  return out;
}

async function sumByReweightedBackward(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  batch: { inputs: tf.Tensor2D; targets: tf.Tensor1D; lengths: number[]; seqLen: number },
  factors: Float64Array,
  fwd: { training: boolean; seed: number },
): Promise<NamedTensors> {
  const names = [...vars.keys()];
  const { value, grads } = valueAndGradsFrugal((...xs: tf.Tensor[]) => {
    const rt = loraRuntime(model, lora, new Map(names.map((n, k) => [n, xs[k]!])));
    return weightedExampleLoss(model.forward(batch.inputs, { ...fwd, lora: rt }), batch.targets, batch.lengths, batch.seqLen, factors);
  })(names.map((n) => vars.get(n)!));
  const out: NamedTensors = new Map();
  for (let k = 0; k < names.length; k++) out.set(names[k]!, { shape: [...grads[k]!.shape], data: (await grads[k]!.data()) as Float32Array });
  tf.dispose([value, ...grads]);
  return out;
}
