/**
 * Record-level DP-SGD for LoRA (Abadi et al. 2016, "Deep Learning with Differential Privacy",
 * Algorithm 1) over privacy UNITS (privacy-units.ts; Chua et al. 2024, "Mind the Privacy Unit!
 * User-Level Differential Privacy for Language Model Fine-Tuning"): at every step each unit (a
 * document, all records of one patient_id, or one sequence) joins the batch independently with
 * probability q (Poisson sampling, what the sampled-Gaussian accountant assumes); of a sampled
 * unit with more than `maxSequencesPerUnit` sequences that many are drawn uniformly without
 * replacement from the CSPRNG (contribution bounding, Chua et al. 2024 Section 3; the rest are
 * dropped for this step and counted); the gradients of a unit's sequences are summed and that
 * sum clipped to L2 norm C (ghost-units.ts), so one unit moves the clipped sum by at most C whatever
 * its size (ghost-units.ts); the clipped unit gradients are summed, the exact
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
import { assertAdapterLayout, loraTrainableDimension, type CausalLM, type LoraConfig } from '@fedlora/model';
import { DEFAULT_GRID_FRACTION, gridSensitivity, poissonSample, type DpSgdParams } from '@fedlora/privacy';
import { privateLoraGradient, type PerExampleMethod } from './dp-sgd-grads.js';
import type { ClippedSumMethod, GhostCompute } from './dp-sgd-ghost.js';
import type { UnitData } from './privacy-units.js';
import { runTrainingLoop, type GradientSource } from './trainer-loop.js';
import { timed, type DpSgdProfiler } from './dp-sgd-phases.js';

/** Progress of one DP-SGD step. */
export interface DpSgdStepInfo {
  step: number;
  /** Realised Poisson batch size in units (not private: for local display only). */
  batchSize: number;
  /** Sequences of the sampled units that the per-unit cap left out of this step (local only, never sent). */
  droppedSequences: number;
  /** Mean loss of the sampled sequences (not private: for local display only; NaN for an empty batch). */
  loss: number;
  /** Fraction of the sampled units whose gradient was clipped. */
  clippedFraction: number;
  tokensPerSecond: number;
  learningRate: number;
}

/** Options of `trainLocalDpSgd`. */
export interface DpSgdTrainOptions {
  steps: number;
  /** Poisson sampling rate q: the probability that a unit joins a step's batch. */
  samplingRate: number;
  /** Per-unit L2 clip C (of the sum of the unit's sequences' gradients). */
  clipNorm: number;
  /**
   * Contribution bound: at most this many of a sampled unit's sequences enter a step, drawn
   * uniformly without replacement (default `DEFAULT_MAX_SEQUENCES_PER_UNIT`).
   */
  maxSequencesPerUnit?: number;
  /** Noise std / C. */
  noiseMultiplier: number;
  learningRate: number;
  /** CSPRNG (node:crypto in production, seeded in tests) for sampling, noise and LoRA dropout seeds. */
  rng: RandomBytes;
  weightDecay?: number;
  /** AdamW's epsilon (default 1e-8); see LoopOptions.adamEps. */
  adamEps?: number;
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
  /** Adds the wall-clock time of each phase of every step here (profiling; dp-sgd-phases.ts). */
  profiler?: DpSgdProfiler;
}

/** Result of `trainLocalDpSgd`. */
export interface DpSgdTrainResult {
  adapter: NamedTensors;
  /** Mean over steps of the sampled sequences' loss (not private: local diagnostics). */
  trainLoss: number;
  /** Privacy units in the data (what q is a fraction of). */
  numExamples: number;
  /** Sequences of sampled units left out by the per-unit cap, over all steps (local only, never sent). */
  droppedSequences: number;
  /** Sequences of sampled units that entered a step, over all steps. */
  sampledSequences: number;
  /** Tokens (targets) processed: the sampled sequences' lengths minus one, summed. */
  tokens: number;
  steps: number;
  /** Mean realised batch size (units) over the steps. */
  meanBatchSize: number;
  /** Fraction of all sampled units whose gradient was clipped. */
  clippedFraction: number;
  /** What to account for this run (the sampled-Gaussian mechanism). */
  privacy: DpSgdParams;
}

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

/** Trainable values of a LoRA adapter: r (dIn + dOut) per adapted linear layer, r dOut with FFA-LoRA (A frozen). */
export function loraDimension(model: Pick<CausalLM, 'linears'>, lora: LoraConfig): number {
  return loraTrainableDimension(model, lora);
}

/** Default cap on the sequences of one unit in a step (contribution bounding). */
export const DEFAULT_MAX_SEQUENCES_PER_UNIT = 8;

/**
 * Trains a LoRA adapter with DP-SGD over privacy units; returns new tensors, leaving `adapter`
 * and the base weights untouched. `data` is either packed units (`packUnits`) or bare sequences,
 * each then its own unit (the `sequence` unit).
 */
export async function trainLocalDpSgd(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, data: Int32Array[] | UnitData, opts: DpSgdTrainOptions): Promise<DpSgdTrainResult> {
  const { sequences, units } = asUnits(data);
  validateDpSgdOptions(opts, sequences);
  const cap = opts.maxSequencesPerUnit ?? DEFAULT_MAX_SEQUENCES_PER_UNIT;
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`maxSequencesPerUnit must be a positive integer, received ${cap}`);
  assertAdapterLayout(model, lora, adapter);
  const expectedBatchSize = opts.samplingRate * units.length;
  // One padded length for every step and pass: which units share a batch must not change the others' float32 gradients.
  const padTo = sequences.reduce((n, q) => Math.max(n, q.length - 1), 1);
  const totals = { sampled: 0, clipped: 0, dropped: 0, sequences: 0 };
  // The loop applies AdamW between the end of `gradients` and `onStep`: that interval is the optimizer's.
  let gradientsDone = 0;
  const profiler = opts.profiler;
  const onStep = profiler
    ? (s: DpSgdStepInfo) => {
        profiler.times.optimizer += profiler.now() - gradientsDone;
        return opts.onStep?.(s);
      }
    : opts.onStep;
  // DP-SGD is a gradient source of the one training loop: sample units, clip per unit, add the noise.
  const source: GradientSource<{ batchSize: number; droppedSequences: number; clippedFraction: number }> = {
    async gradients(vars, _step, frozen) {
      const { sampled, batch, dropoutSeed } = timed(opts.profiler, 'sample', () => {
        const s = poissonSample(units.length, opts.samplingRate, opts.rng);
        return { sampled: s, batch: boundedUnitBatch(s.map((u) => units[u]!), cap, opts.rng), dropoutSeed: uniformInt(opts.rng, 2 ** 31) };
      });
      const batchSequences = batch.sequences.map((i) => sequences[i]!);
      const { gradient, clippedFraction, meanLoss } = await privateLoraGradient(model, lora, vars, batchSequences, {
        clipNorm: opts.clipNorm,
        noiseMultiplier: opts.noiseMultiplier,
        expectedBatchSize,
        rng: opts.rng,
        dropoutSeed,
        method: opts.perExampleGradients,
        clippedSum: opts.clippedSum,
        compute: opts.ghostCompute,
        units: batch.unitOf,
        frozen,
        profiler: opts.profiler,
        padTo,
      });
      totals.sampled += sampled.length;
      totals.clipped += clippedFraction * sampled.length;
      totals.dropped += batch.dropped;
      totals.sequences += batchSequences.length;
      if (opts.profiler) gradientsDone = opts.profiler.now();
      return {
        grads: new Map([...gradient].map(([n, t]) => [n, tf.tensor(t.data, t.shape)])),
        factor: 1,
        loss: batchSequences.length ? meanLoss : Number.NaN,
        tokens: batchSequences.reduce((n, q) => n + q.length - 1, 0),
        info: { batchSize: sampled.length, droppedSequences: batch.dropped, clippedFraction },
      };
    },
  };
  const r = await runTrainingLoop(model, lora, adapter, source, {
    steps: opts.steps,
    learningRate: opts.learningRate,
    weightDecay: opts.weightDecay ?? 0,
    ...(opts.adamEps !== undefined ? { adamEps: opts.adamEps } : {}),
    warmupSteps: opts.warmupSteps ?? 0,
    now: opts.now,
    onStep,
  });
  return {
    adapter: r.adapter,
    trainLoss: r.trainLoss,
    numExamples: units.length,
    droppedSequences: totals.dropped,
    sampledSequences: totals.sequences,
    tokens: r.tokens,
    steps: opts.steps,
    meanBatchSize: totals.sampled / opts.steps,
    clippedFraction: totals.sampled ? totals.clipped / totals.sampled : 0,
    privacy: dpSgdParams({ ...opts, dimension: loraDimension(model, lora) }),
  };
}

/** Bare sequences become one unit each; packed units pass through. */
function asUnits(data: Int32Array[] | UnitData): { sequences: Int32Array[]; units: number[][] } {
  if (Array.isArray(data)) return { sequences: data, units: data.map((_, i) => [i]) };
  return { sequences: data.sequences, units: data.units };
}

/**
 * The step's sequences from the sampled units, at most `cap` per unit, drawn uniformly without
 * replacement from `rng` (a partial Fisher-Yates shuffle over unbiased `uniformInt` draws), with
 * the batch-local unit of each sequence and the number left out.
 */
export function boundedUnitBatch(sampled: readonly (readonly number[])[], cap: number, rng: RandomBytes): { sequences: number[]; unitOf: number[]; dropped: number } {
  const sequences: number[] = [];
  const unitOf: number[] = [];
  let dropped = 0;
  sampled.forEach((seqs, u) => {
    let chosen: readonly number[] = seqs;
    if (seqs.length > cap) {
      const pool = [...seqs];
      for (let k = 0; k < cap; k++) {
        const j = k + uniformInt(rng, pool.length - k);
        [pool[k], pool[j]] = [pool[j]!, pool[k]!];
      }
      chosen = pool.slice(0, cap);
      dropped += seqs.length - cap;
    }
    for (const i of chosen) {
      sequences.push(i);
      unitOf.push(u);
    }
  });
  return { sequences, unitOf, dropped };
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
