import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { LocalTrainer, TrainingProgress } from '@fedlora/federation';
import type { RoundPlan } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { planUpdate, plannedLoraVariant } from '@fedlora/federation';
import type { StepInfo } from '@fedlora/train';
import { evaluate, trainLocal } from '@fedlora/train';

/** Options of the real local trainer of a client node. */
export interface ModelTrainerOptions {
  model: CausalLM;
  lora: LoraConfig;
  /** Packed training sequences (seqLen + 1 tokens each). */
  train: Int32Array[];
  /** Held-out sequences, used to report the global adapter's eval loss. */
  heldOut?: Int32Array[];
  seed: string | number;
  weightDecay?: number;
  gradClipNorm?: number;
  onStep?: (round: number, s: StepInfo) => void;
}

/**
 * The LocalTrainer of an institution's node: trains the LoRA adapter on its private sequences
 * from the round's global adapter and returns only the delta (local - global).
 */
export class ModelTrainer implements LocalTrainer {
  readonly numExamples: number;

  constructor(private readonly opts: ModelTrainerOptions) {
    if (opts.train.length === 0) throw new RangeError('the client has no training sequences: its data file is empty or shorter than one sequence');
    this.numExamples = opts.train.length;
  }

  async train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress) {
    const { model, lora } = this.opts;
    assertPlanVariant(plan, lora);
    const r = await trainLocal(model, lora, global, this.opts.train, {
      steps: plan.localSteps,
      batchSize: Math.min(plan.batchSize, this.opts.train.length),
      learningRate: plan.learningRate,
      seed: `${this.opts.seed}:${plan.round}:${plan.attempt}`,
      weightDecay: this.opts.weightDecay ?? 0,
      gradClipNorm: this.opts.gradClipNorm ?? 1,
      proximalMu: plan.training?.proximalMu ?? 0,
      onStep: async (s) => {
        this.opts.onStep?.(plan.round, s);
        await progress?.(s.step);
      },
    });
    const metrics: Record<string, number> = { tokens: r.tokens, steps: r.steps };
    if (this.opts.heldOut?.length) {
      // Federated evaluation: the loss of the global adapter this round started from.
      metrics.globalEvalLoss = (await evaluate(model, lora, global, this.opts.heldOut)).loss;
    }
    return { delta: planUpdate(plan, r.adapter, global), numExamples: this.numExamples, trainLoss: r.trainLoss, metrics };
  }
}

/**
 * Refuses a plan whose LoRA variant is not the one this trainer trains: under FFA-LoRA the
 * coordinator averages only B and keeps A, so a client that trained A would have its A changes
 * silently dropped (and would account DP-SGD for twice the dimension), and the reverse.
 */
export function assertPlanVariant(plan: RoundPlan, lora: LoraConfig): void {
  const planned = plannedLoraVariant(plan);
  const mine = lora.variant ?? 'lora';
  if (planned !== mine) throw new RangeError(`round ${plan.round}: the plan's lora.variant is ${planned}, this client trains ${mine}`);
}
