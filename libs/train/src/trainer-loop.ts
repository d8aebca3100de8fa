/**
 * The one training loop of fedlora (issue 11 §4): LoRA variables, AdamW with warmup and cosine
 * decay, periodic evaluation with early stopping, resumable state, and a yield to the event loop
 * after every step. Where a step's gradients come from is pluggable (`GradientSource`), in the
 * spirit of Opacus, where the privacy engine wraps the optimizer step rather than owning a loop:
 * plain training (micro-batch accumulation, FedProx, global-norm clipping; trainer.ts) and DP-SGD
 * (Poisson-sampled units, per-unit clipping, exact grid noise; dp-sgd.ts) are two sources of the
 * same loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { AdamW, type AdamWState } from './adamw.js';
import { yieldToEventLoop } from './event-loop.js';
import { warmupCosine } from './schedule.js';
import { isTrainableLoraTensor, type CausalLM, type LoraConfig } from '@fedlora/model';
import { evaluate } from './trainer.js';

/** One optimizer step's gradients, as a source hands them to the loop. */
export interface StepGradients<I extends object = object> {
  /** Gradients by variable name, on the device; the loop disposes them after the step. */
  grads: Map<string, tf.Tensor>;
  /** The factor the optimizer scales them by (averaging, clipping; 1 when already final). */
  factor: number;
  /** The step's training loss (NaN when the step had no data, e.g. an empty Poisson batch). */
  loss: number;
  /** Targets the step trained on. */
  tokens: number;
  /** What the source adds to the step's report. */
  info: I;
}

/** Where a step's gradients come from. */
export interface GradientSource<I extends object = object> {
  /**
   * The gradients of optimizer step `step` (0-based, counted over the whole run) at the current
   * `vars` (the trainable tensors); `frozen` holds the adapter's constant tensors (FFA-LoRA's A).
   */
  gradients(vars: ReadonlyMap<string, tf.Variable>, step: number, frozen: ReadonlyMap<string, tf.Tensor>): Promise<StepGradients<I>>;
  /** Releases what the source holds on the device (called once, after the loop). */
  dispose?(): void;
}

/** What the loop reports after every step (plus the source's `info`). */
export interface LoopStepInfo {
  step: number;
  loss: number;
  tokensPerSecond: number;
  learningRate: number;
  evalLoss?: number;
}

/** Options of `runTrainingLoop`. */
export interface LoopOptions<I extends object> {
  steps: number;
  learningRate: number;
  weightDecay?: number;
  /**
   * AdamW's epsilon (default 1e-8). Far above the gradients' coordinates (e.g. 1) the update is
   * lr m / eps: momentum SGD with learning rate lr / eps (DP-SGD under a few noisy steps, dp-sgd.ts).
   */
  adamEps?: number;
  warmupSteps?: number;
  /** Length of the whole run for the schedule (default: resumed step + steps). */
  totalSteps?: number;
  resume?: { adapter: NamedTensors; optimizer: AdamWState };
  now?: () => number;
  evalData?: Int32Array[];
  evalEvery?: number;
  evalBatchSize?: number;
  patience?: number;
  onStep?: (s: LoopStepInfo & I) => unknown;
}

/** Result of `runTrainingLoop`. */
export interface LoopResult {
  /** The final adapter, or the best evaluated one after an early stop. */
  adapter: NamedTensors;
  /** Mean loss over the steps that had data (0 when no step ran). */
  trainLoss: number;
  tokens: number;
  steps: number;
  bestEvalLoss?: number;
  stoppedEarly: boolean;
  state: { adapter: NamedTensors; optimizer: AdamWState };
}

let runCounter = 0; // tfjs variable names are process-global

/** Trains the LoRA tensors of `adapter` (or of `opts.resume`) with gradients from `source`; `adapter` is left untouched. */
export async function runTrainingLoop<I extends object>(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, source: GradientSource<I>, opts: LoopOptions<I>): Promise<LoopResult> {
  const now = opts.now ?? (() => performance.now());
  const start = opts.resume?.adapter ?? adapter;
  const vars = new Map<string, tf.Variable>();
  // FFA-LoRA: the frozen matrices (A) are constants of the forward pass, never variables; they come back bit for bit.
  const frozen = new Map<string, tf.Tensor>();
  for (const [name, t] of start) {
    if (!isTrainableLoraTensor(lora, name)) {
      frozen.set(name, tf.tensor(t.data, t.shape));
      continue;
    }
    // The variable shares the initial tensor's data; dispose the tensor so nothing leaks per run.
    const init = tf.tensor(t.data, t.shape);
    vars.set(name, tf.variable(init, true, `lora/${name}/${++runCounter}`));
    init.dispose();
  }
  const optimizer = new AdamW(vars, { weightDecay: opts.weightDecay ?? 0, ...(opts.adamEps !== undefined ? { eps: opts.adamEps } : {}) }, opts.resume?.optimizer);
  const firstStep = opts.resume?.optimizer.step ?? 0;
  const totalSteps = opts.totalSteps ?? firstStep + opts.steps;
  const lastStep = Math.min(totalSteps, firstStep + opts.steps);
  const evalEvery = opts.evalEvery ?? Math.max(1, Math.floor(opts.steps / 5));
  let lossSum = 0;
  let lossSteps = 0;
  let tokens = 0;
  let stepsRun = 0;
  let best: { loss: number; adapter: NamedTensors } | undefined;
  let sinceBest = 0;
  let stoppedEarly = false;
  try {
    for (let s = firstStep; s < lastStep; s++) {
      const t0 = now();
      const g = await source.gradients(vars, s, frozen);
      const lr = warmupCosine(s, totalSteps, opts.learningRate, opts.warmupSteps ?? 0);
      try {
        optimizer.apply(g.grads, lr, g.factor);
      } finally {
        for (const t of g.grads.values()) t.dispose();
      }
      if (Number.isFinite(g.loss)) {
        lossSum += g.loss;
        lossSteps++;
      }
      stepsRun++;
      tokens += g.tokens;
      const info = { ...g.info, step: s + 1, loss: g.loss, tokensPerSecond: g.tokens / Math.max(1e-9, (now() - t0) / 1000), learningRate: lr } as LoopStepInfo & I;
      if (opts.evalData && opts.evalData.length > 0 && ((s + 1 - firstStep) % evalEvery === 0 || s + 1 === lastStep)) {
        const current = await hostAdapter(vars, start);
        const ev = await evaluate(model, lora, current, opts.evalData, { batchSize: opts.evalBatchSize ?? 8 });
        info.evalLoss = ev.loss;
        if (!best || ev.loss < best.loss) {
          best = { loss: ev.loss, adapter: current };
          sinceBest = 0;
        } else if (opts.patience !== undefined && ++sinceBest >= opts.patience) {
          stoppedEarly = true;
        }
      }
      await opts.onStep?.(info);
      await yieldToEventLoop();
      if (stoppedEarly) break;
    }
    const last = await hostAdapter(vars, start);
    return {
      adapter: stoppedEarly && best ? best.adapter : last,
      trainLoss: stepsRun === 0 ? 0 : lossSteps ? lossSum / lossSteps : Number.NaN,
      tokens,
      steps: stepsRun,
      bestEvalLoss: best?.loss,
      stoppedEarly,
      state: { adapter: await hostAdapter(vars, start), optimizer: await optimizer.state() },
    };
  } finally {
    optimizer.dispose();
    for (const v of vars.values()) v.dispose();
    for (const t of frozen.values()) t.dispose();
    source.dispose?.();
  }
}

/** The adapter on the host in the layout of `layout`: the variables' values, and the frozen tensors copied from `layout`. */
export async function hostAdapter(vars: ReadonlyMap<string, tf.Variable>, layout: NamedTensors): Promise<NamedTensors> {
  const out: NamedTensors = new Map();
  for (const [name, t] of layout) {
    const v = vars.get(name);
    out.set(name, v ? { shape: [...v.shape], data: new Float32Array((await v.data()) as Float32Array) } : { shape: [...t.shape], data: new Float32Array(t.data) });
  }
  return out;
}
