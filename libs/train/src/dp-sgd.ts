/**
 * Record-level DP-SGD for LoRA (Abadi et al. 2016, "Deep Learning with Differential Privacy",
 * Algorithm 1): at every step each training sequence joins the batch independently with
 * probability q (Poisson sampling, what the sampled-Gaussian accountant assumes), each sampled
 * sequence's LoRA gradient is clipped to L2 norm C, the clipped gradients are summed, the exact
 * discrete Gaussian N(0, (z C)^2) on a fine grid is added (`privatizeGradients`, never tf.random)
 * and the result divided by the expected batch size q N before the AdamW update (post-processing).
 *
 * Per-example norms and the clipped sum come from ONE batched forward and backward pass over the
 * Poisson batch (`perExampleGradients: 'ghost'`, the default; dp-sgd-ghost.ts): LoRA layers are
 * linear, so each example's gradient norm follows from the layer inputs and output gradients
 * (ghost clipping, Li et al. 2022, Section 4) without a backward pass per example. The reference,
 * one backward pass per sampled sequence (`'per-example'`), gives the same result.
 *
 * The privacy cost of a call is the `sampled_gaussian` event {q, z', steps}: see `dpSgdParams`.
 * Each clipped per-example gradient is rounded to the noise grid (step h = z C 2^-16) before the
 * exact integer sum, with a clip factor certified against float rounding, so one sequence moves
 * the sum by at most C + sqrt(d) h / 2 in floating point (libs/privacy grid-clipped-sum.ts).
 * The accounted sensitivity stays C + sqrt(d) h (`gridSensitivity`, what the ledger verifier
 * recomputes) and the multiplier accounted is z' = z C / (C + sqrt(d) h), slightly below z
 * (0.9976 z for the tiny model's 24 576 values).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { uniformInt } from '@fedlora/tensor';
import { assertAdapterLayout, loraTargets, type CausalLM, type LoraConfig } from '@fedlora/model';
import { DEFAULT_GRID_FRACTION, gridSensitivity, poissonSample, type DpSgdParams } from '@fedlora/privacy';
import { AdamW } from './adamw.js';
import { privateLoraGradient, type PerExampleMethod } from './dp-sgd-grads.js';
import type { ClippedSumMethod, GhostCompute } from './dp-sgd-ghost.js';
import { warmupCosine } from './schedule.js';
import { yieldToEventLoop } from './event-loop.js';

/** Progress of one DP-SGD step. */
export interface DpSgdStepInfo {
  step: number;
  /** Realised Poisson batch size (not private: for local display only). */
  batchSize: number;
  /** Mean loss of the sampled sequences (not private: for local display only; NaN for an empty batch). */
  loss: number;
  /** Fraction of the sampled sequences whose gradient was clipped. */
  clippedFraction: number;
  tokensPerSecond: number;
  learningRate: number;
}

/** Options of `trainLocalDpSgd`. */
export interface DpSgdTrainOptions {
  steps: number;
  /** Poisson sampling rate q: the probability that a sequence joins a step's batch. */
  samplingRate: number;
  /** Per-example L2 clip C. */
  clipNorm: number;
  /** Noise std / C. */
  noiseMultiplier: number;
  learningRate: number;
  /** CSPRNG (node:crypto in production, seeded in tests) for sampling, noise and LoRA dropout seeds. */
  rng: RandomBytes;
  weightDecay?: number;
  warmupSteps?: number;
  /** Awaited after each step; the loop then yields to the event loop so timers and I/O keep running. */
  onStep?: (s: DpSgdStepInfo) => unknown;
  /** Clock in milliseconds (a parameter, for reproducible tests). */
  now?: () => number;
  /** `ghost` (default): one batched pass per step; `per-example`: one pass per sequence (the reference). */
  perExampleGradients?: PerExampleMethod;
  /**
   * Ghost only: the clipped sum from the recorded traces (`traces`, default) or a second, re-weighted
   * backward pass. Only the default keeps the sensitivity bound exact in floating point (dp-sgd-ghost.ts).
   */
  clippedSum?: ClippedSumMethod;
  /**
   * Ghost only: per-example gradients formed on the device (`device`, default) or norms and sums
   * from the traces on the host in float64 (`host`). Only the default keeps the sensitivity bound
   * exact in floating point (dp-sgd-ghost.ts).
   */
  ghostCompute?: GhostCompute;
}

/** Result of `trainLocalDpSgd`. */
export interface DpSgdTrainResult {
  adapter: NamedTensors;
  /** Mean over steps of the sampled sequences' loss (not private: local diagnostics). */
  trainLoss: number;
  numExamples: number;
  /** Tokens (targets) processed: the sampled sequences' lengths minus one, summed. */
  tokens: number;
  steps: number;
  /** Mean realised batch size over the steps. */
  meanBatchSize: number;
  /** Fraction of all sampled sequences whose gradient was clipped. */
  clippedFraction: number;
  /** What to account for this run (the sampled-Gaussian mechanism). */
  privacy: DpSgdParams;
}

let runCounter = 0; // tfjs variable names are process-global

/**
 * The accountant's view of a DP-SGD run over `dimension` trainable values: q, C, `steps`
 * compositions, and the noise multiplier the grid rounding leaves, z C / gridSensitivity(C, d, step)
 * with the grid step z C 2^-16 that `privatizeGradients` uses.
 */
export function dpSgdParams(o: Pick<DpSgdTrainOptions, 'samplingRate' | 'clipNorm' | 'noiseMultiplier' | 'steps'> & { dimension: number }): DpSgdParams {
  if (!Number.isInteger(o.dimension) || o.dimension < 1) throw new RangeError(`dimension must be a positive integer, received ${o.dimension}`);
  const std = o.noiseMultiplier * o.clipNorm;
  const z = std > 0 ? std / gridSensitivity(o.clipNorm, o.dimension, std * DEFAULT_GRID_FRACTION) : 0;
  return { mode: 'dp-sgd', clipNorm: o.clipNorm, noiseMultiplier: z, samplingRate: o.samplingRate, steps: o.steps };
}

/** Trainable values of a LoRA adapter: r (dIn + dOut) per adapted linear layer. */
export function loraDimension(model: Pick<CausalLM, 'linears'>, lora: LoraConfig): number {
  return loraTargets(model, lora).reduce((n, m) => n + lora.r * (m.inFeatures + m.outFeatures), 0);
}

/** Trains a LoRA adapter with DP-SGD; returns new tensors, leaving `adapter` and the base weights untouched. */
export async function trainLocalDpSgd(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, data: Int32Array[], opts: DpSgdTrainOptions): Promise<DpSgdTrainResult> {
  validateDpSgdOptions(opts, data);
  assertAdapterLayout(model, lora, adapter);
  const now = opts.now ?? (() => performance.now());
  const vars = new Map<string, tf.Variable>();
  for (const [name, t] of adapter) {
    const init = tf.tensor(t.data, t.shape);
    vars.set(name, tf.variable(init, true, `dpsgd/${name}/${++runCounter}`));
    init.dispose();
  }
  const optimizer = new AdamW(vars, { weightDecay: opts.weightDecay ?? 0 });
  const expectedBatchSize = opts.samplingRate * data.length;
  let lossSum = 0;
  let lossSteps = 0;
  let sampledTotal = 0;
  let clippedTotal = 0;
  let tokenTotal = 0;
  try {
    for (let s = 0; s < opts.steps; s++) {
      const t0 = now();
      const batch = poissonSample(data.length, opts.samplingRate, opts.rng);
      const dropoutSeed = uniformInt(opts.rng, 2 ** 31);
      const { gradient, clippedFraction, meanLoss: loss } = await privateLoraGradient(model, lora, vars, batch.map((i) => data[i]!), {
        clipNorm: opts.clipNorm,
        noiseMultiplier: opts.noiseMultiplier,
        expectedBatchSize,
        rng: opts.rng,
        dropoutSeed,
        method: opts.perExampleGradients,
        clippedSum: opts.clippedSum,
        compute: opts.ghostCompute,
      });
      const lr = warmupCosine(s, opts.steps, opts.learningRate, opts.warmupSteps ?? 0);
      const device = new Map<string, tf.Tensor>([...gradient].map(([n, t]) => [n, tf.tensor(t.data, t.shape)]));
      optimizer.apply(device, lr);
      for (const g of device.values()) g.dispose();
      if (batch.length) {
        lossSum += loss;
        lossSteps++;
      }
      sampledTotal += batch.length;
      clippedTotal += clippedFraction * batch.length;
      const stepTokens = batch.reduce((n, i) => n + data[i]!.length - 1, 0);
      tokenTotal += stepTokens;
      await opts.onStep?.({ step: s + 1, batchSize: batch.length, loss, clippedFraction, tokensPerSecond: stepTokens / Math.max(1e-9, (now() - t0) / 1000), learningRate: lr });
      await yieldToEventLoop();
    }
    const out: NamedTensors = new Map();
    for (const [name, v] of vars) out.set(name, { shape: [...v.shape], data: new Float32Array((await v.data()) as Float32Array) });
    return {
      adapter: out,
      trainLoss: lossSteps ? lossSum / lossSteps : Number.NaN,
      numExamples: data.length,
      tokens: tokenTotal,
      steps: opts.steps,
      meanBatchSize: sampledTotal / opts.steps,
      clippedFraction: sampledTotal ? clippedTotal / sampledTotal : 0,
      privacy: dpSgdParams({ ...opts, dimension: loraDimension(model, lora) }),
    };
  } finally {
    optimizer.dispose();
    for (const v of vars.values()) v.dispose();
  }
}

/** Throws a RangeError naming the first invalid option. */
export function validateDpSgdOptions(o: DpSgdTrainOptions, data: Int32Array[]): void {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`steps must be a positive integer, received ${o.steps}`);
  if (!(o.samplingRate > 0 && o.samplingRate <= 1)) throw new RangeError(`samplingRate must be in (0, 1], received ${o.samplingRate}`);
  if (!(o.clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${o.clipNorm}`);
  if (!(o.noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${o.noiseMultiplier}`);
  if (!(o.learningRate > 0)) throw new RangeError(`learningRate must be positive, received ${o.learningRate}`);
  if (typeof o.rng !== 'function') throw new TypeError(`rng must be a RandomBytes function, received ${typeof o.rng}`);
  if (data.length === 0) throw new RangeError('data must hold at least one sequence, received 0');
  const short = data.findIndex((s) => s.length < 2);
  if (short >= 0) throw new RangeError(`every sequence needs at least 2 tokens (an input and a target), sequence ${short} holds ${data[short]!.length}`);
}
