/**
 * Local LoRA training: the base model stays frozen; only the adapter's A and B matrices are
 * tfjs variables (only B with FFA-LoRA, `lora.variant: 'ffa'`: A is a constant and comes back
 * bit for bit). Each optimizer step averages the gradients of `gradAccumulation` micro-batches,
 * clips their global L2 norm, and applies AdamW with linear warmup and cosine decay. Batches are
 * drawn by a seeded shuffle, so a run is reproducible from (data, seed). The loop itself is
 * trainer-loop.ts, shared with DP-SGD; this file is plain training's gradient source.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, shuffleInPlace, uniformInt } from '@fedlora/tensor';
import { assertAdapterLayout, crossEntropy, crossEntropySum, isTrainableLoraTensor, loraRuntime, disposeLoraRuntime, valueAndGradsFrugal, type CausalLM, type LoraConfig } from '@fedlora/model';
import { sumOfSquares } from '@fedlora/native-cpu';
import type { AdamWState } from './adamw.js';
import { runTrainingLoop, type GradientSource } from './trainer-loop.js';
import { hasLossMask, tokenIdOf } from './loss-mask.js';

/** Progress of one optimizer step. */
export interface StepInfo {
  step: number;
  loss: number;
  tokensPerSecond: number;
  learningRate: number;
  gradNorm: number;
  evalLoss?: number;
}

/** Options of `trainLocal`. */
export interface TrainOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number | string;
  weightDecay?: number;
  warmupSteps?: number;
  /** Clip the global gradient L2 norm to this (0 or undefined: no clipping). */
  gradClipNorm?: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccumulation?: number;
  /** Awaited after each step; the loop then yields to the event loop so timers and I/O keep running. */
  onStep?: (s: StepInfo) => unknown;
  /** Held-out sequences for periodic evaluation and early stopping. */
  evalData?: Int32Array[];
  /** Evaluate every this many steps (default: steps / 5). */
  evalEvery?: number;
  /** Stop after this many evaluations without improvement; the best adapter is returned. */
  patience?: number;
  /** Length of the whole run for the learning-rate schedule when it is split in legs (default: resumed step + steps). */
  totalSteps?: number;
  /** Resume from a saved state (adapter + optimizer moments + step). */
  resume?: TrainState;
  /** Clock in milliseconds (a parameter, for reproducible tests). */
  now?: () => number;
  /**
   * FedProx proximal coefficient mu (Li et al. 2020, "Federated Optimization in Heterogeneous
   * Networks", Eq. 2): adds the gradient of (mu/2)||w - w_start||^2, anchoring local training to
   * the adapter it started from. 0 or undefined: plain local training.
   */
  proximalMu?: number;
}

/** Everything needed to continue a run where it stopped. */
export interface TrainState {
  adapter: NamedTensors;
  optimizer: AdamWState;
}

/** Result of `trainLocal`. */
export interface TrainResult {
  adapter: NamedTensors;
  /** Mean loss over the optimizer steps run. */
  trainLoss: number;
  /** Distinct training sequences available. */
  numExamples: number;
  /** Tokens (targets) processed. */
  tokens: number;
  steps: number;
  bestEvalLoss?: number;
  stoppedEarly: boolean;
  state: TrainState;
}

/** Trains a LoRA adapter; returns new tensors, leaving `adapter` and the base weights untouched. */
export async function trainLocal(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, data: Int32Array[], opts: TrainOptions): Promise<TrainResult> {
  validateOptions(opts, data);
  assertAdapterLayout(model, lora, adapter);
  if (opts.resume) assertAdapterLayout(model, lora, opts.resume.adapter, 'resume.adapter');
  const mu = opts.proximalMu ?? 0;
  if (!(mu >= 0)) throw new RangeError(`proximalMu must be >= 0, received ${mu}`);
  const r = await runTrainingLoop(model, lora, adapter, plainGradients(model, lora, adapter, data, opts), {
    steps: opts.steps,
    learningRate: opts.learningRate,
    weightDecay: opts.weightDecay,
    warmupSteps: opts.warmupSteps,
    totalSteps: opts.totalSteps,
    resume: opts.resume,
    now: opts.now,
    evalData: opts.evalData,
    evalEvery: opts.evalEvery,
    evalBatchSize: opts.batchSize,
    patience: opts.patience,
    onStep: opts.onStep,
  });
  return { ...r, numExamples: data.length };
}

/**
 * The gradient source of plain training: the mean gradient of `gradAccumulation` micro-batches
 * drawn by a seeded shuffle (batch k of the run holds examples k*B .. k*B+B-1 of the concatenation
 * of per-epoch shuffles, each a function of (seed, epoch) only, so a resumed run sees exactly the
 * batches it would have), plus FedProx's proximal term, with the global norm clipped by the factor.
 */
function plainGradients(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, data: Int32Array[], opts: TrainOptions): GradientSource<{ gradNorm: number }> {
  const accum = opts.gradAccumulation ?? 1;
  const mu = opts.proximalMu ?? 0;
  const anchor = mu > 0 ? new Map([...adapter].filter(([name]) => isTrainableLoraTensor(lora, name)).map(([name, t]) => [name, tf.tensor(t.data, t.shape)])) : undefined;
  const seqLen = data[0]!.length - 1;
  const epochs = new Map<number, number[]>();
  const example = (p: number): Int32Array => {
    const epoch = Math.floor(p / data.length);
    let order = epochs.get(epoch);
    if (!order) {
      order = shuffleInPlace(Array.from(data.keys()), seededRandomBytes(`train:${opts.seed}:epoch:${epoch}`));
      epochs.clear();
      epochs.set(epoch, order);
    }
    return data[order[p % data.length]!]!;
  };
  const batchAt = (k: number): Int32Array[] => Array.from({ length: opts.batchSize }, (_, j) => example(k * opts.batchSize + j));
  return {
    async gradients(vars, s, frozen) {
      const names = [...vars.keys()];
      const varList = names.map((n) => vars.get(n)!);
      const grads = new Map<string, tf.Tensor>();
      let loss = 0;
      let tokens = 0;
      for (let micro = 0; micro < accum; micro++) {
        const k = s * accum + micro;
        const { inputs, targets, weights, targetCount } = toTensors(batchAt(k), seqLen);
        tokens += targetCount;
        const dropoutSeed = uniformInt(seededRandomBytes(`train:${opts.seed}:dropout:${k}`), 2 ** 31);
        const { value, grads: g } = valueAndGradsFrugal((...xs: tf.Tensor[]) => {
          const rt = loraRuntime(model, lora, new Map([...frozen, ...names.map((n, i) => [n, xs[i]!] as const)]));
          const logits = model.forward(inputs, { lora: rt, training: true, seed: dropoutSeed });
          return crossEntropy(logits, targets, weights);
        })(varList);
        loss += (await value.data())[0]! / accum;
        tf.dispose([value, inputs, targets, ...(weights ? [weights] : [])]);
        g.forEach((gi, i) => {
          const prev = grads.get(names[i]!);
          grads.set(names[i]!, prev ? tf.tidy(() => tf.add(prev, gi)) : gi);
          if (prev) {
            prev.dispose();
            gi.dispose();
          }
        });
      }
      if (anchor) {
        // FedProx: grads hold the sum over `accum` micro-batches, so add accum * mu * (w - w_start).
        for (const [name, g] of grads) {
          grads.set(name, tf.tidy(() => tf.add(g, tf.mul(accum * mu, tf.sub(vars.get(name)!, anchor.get(name)!)))));
          g.dispose();
        }
      }
      const { norm: gradNorm, factor } = clipFactor(grads, 1 / accum, opts.gradClipNorm ?? 0);
      return { grads, factor, loss, tokens, info: { gradNorm } };
    },
    dispose() {
      if (anchor) for (const t of anchor.values()) t.dispose();
    },
  };
}

/** Mean next-token loss (nats per token) of the adapted model over `data`, all trained (unmasked) targets weighted equally. */
export async function evaluate(
  model: CausalLM,
  lora: LoraConfig | undefined,
  adapter: NamedTensors | undefined,
  data: Int32Array[],
  opts: { batchSize?: number } = {},
): Promise<{ loss: number; tokens: number }> {
  if (data.length === 0) throw new RangeError('evaluate: data must hold at least one sequence, received 0');
  const rt = lora && adapter ? loraRuntime(model, lora, adapter) : undefined;
  const bs = opts.batchSize ?? 8;
  let sum = 0;
  let tokens = 0;
  try {
    for (let i = 0; i < data.length; i += bs) {
      const batch = data.slice(i, i + bs);
      const seqLen = batch[0]!.length - 1;
      const { inputs, targets, weights, targetCount } = toTensors(batch, seqLen);
      const loss = tf.tidy(() => crossEntropySum(model.forward(inputs, rt ? { lora: rt } : {}), targets, weights));
      sum += (await loss.data())[0]!;
      tokens += targetCount;
      tf.dispose([loss, inputs, targets, ...(weights ? [weights] : [])]);
    }
  } finally {
    if (rt) disposeLoraRuntime(rt);
  }
  if (tokens === 0) throw new RangeError('evaluate: every target of data is masked out; nothing to evaluate');
  return { loss: sum / tokens, tokens };
}

/**
 * Inputs [B, T] and flattened targets [B*T] from windows of T + 1 tokens. When a window holds
 * masked targets (loss-mask.ts) they are decoded: inputs get the token ids, masked targets become
 * 0 with weight 0 in `weights` [B*T] (absent when nothing is masked); `targetCount` is the number
 * of targets trained on.
 */
export function toTensors(batch: Int32Array[], seqLen: number): { inputs: tf.Tensor2D; targets: tf.Tensor1D; weights?: tf.Tensor1D; targetCount: number } {
  const inp = new Int32Array(batch.length * seqLen);
  const tgt = new Int32Array(batch.length * seqLen);
  const masked = hasLossMask(batch);
  const w = masked ? new Float32Array(batch.length * seqLen) : undefined;
  let count = 0;
  batch.forEach((s, i) => {
    if (s.length !== seqLen + 1) throw new RangeError(`every sequence must hold ${seqLen + 1} tokens, sequence ${i} holds ${s.length}`);
    if (!masked) {
      inp.set(s.subarray(0, seqLen), i * seqLen);
      tgt.set(s.subarray(1), i * seqLen);
      return;
    }
    for (let j = 0; j < seqLen; j++) {
      inp[i * seqLen + j] = tokenIdOf(s[j]!);
      const v = s[j + 1]!;
      tgt[i * seqLen + j] = v < 0 ? 0 : v;
      w![i * seqLen + j] = v < 0 ? 0 : 1;
      if (v >= 0) count++;
    }
  });
  const out = { inputs: tf.tensor2d(inp, [batch.length, seqLen], 'int32'), targets: tf.tensor1d(tgt, 'int32'), targetCount: masked ? count : batch.length * seqLen };
  return w ? { ...out, weights: tf.tensor1d(w, 'float32') } : out;
}

/**
 * The global L2 norm of the gradients scaled by `scale` (the pre-clip norm), and the factor that
 * scales them and clips that norm to `clip` (if > 0). The optimizer applies the factor in its own
 * pass, so no scaled copy of the gradients is made.
 */
function clipFactor(grads: Map<string, tf.Tensor>, scale: number, clip: number): { norm: number; factor: number } {
  const norm = Math.sqrt(sumOfSquares([...grads.values()])) * scale;
  return { norm, factor: clip > 0 && norm > clip ? (scale * clip) / (norm + 1e-6) : scale };
}

function validateOptions(o: TrainOptions, data: Int32Array[]): void {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`steps must be a positive integer, received ${o.steps}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, received ${o.batchSize}`);
  if (!(o.learningRate > 0)) throw new RangeError(`learningRate must be positive, received ${o.learningRate}`);
  if (o.gradAccumulation !== undefined && (!Number.isInteger(o.gradAccumulation) || o.gradAccumulation < 1)) {
    throw new RangeError(`gradAccumulation must be a positive integer, received ${o.gradAccumulation}`);
  }
  if (data.length === 0) throw new RangeError('data must hold at least one sequence, received 0');
}
