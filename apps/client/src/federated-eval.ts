/**
 * Federated evaluation: before training each round, the institution scores the global adapter
 * it received on its own held-out data and sends only aggregate numbers with its update, in
 * the update header's metrics (no wire change: metrics is already a map of numbers):
 *
 * - `evalCount`, `evalAcc`, `evalAccNorm`: multiple-choice questions by log-likelihood
 *   (libs/train eval-harness.ts, lm-evaluation-harness's acc and acc_norm);
 * - `evalLoss` with `evalTokens`: mean loss per completion token of held-out instruction examples;
 * - `generalLoss`: mean loss per token of a general text (catastrophic forgetting shows as a
 *   rising general loss while the domain metric improves).
 *
 * These are not protected by differential privacy (neither is the reported train loss): an
 * institution that must not reveal them leaves the held-out sets unset.
 */
import type { CausalLM, LoraConfig } from '@fedlora/model';
import { defaultLoraConfig } from '@fedlora/model';
import type { LocalTrainer, RoundPlan, TrainingProgress } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { completionLoss, evaluate, evaluateMcq, type McqItem } from '@fedlora/train';

/** The held-out sets an institution evaluates the global adapter on. */
export interface FederatedEvalSets {
  /** Multiple-choice questions ({question, choices, answer}). */
  mcq?: McqItem[];
  /** Masked instruction sequences (loss-mask.ts), scored on their completion tokens. */
  instruct?: Int32Array[];
  /** General-text windows of seqLen + 1 tokens (e.g. held-out Moby-Dick for the bundled model). */
  general?: Int32Array[];
}

/** Wraps a trainer: every update also carries the evaluation of the global adapter it started from. */
export class EvaluatingTrainer implements LocalTrainer {
  readonly accept?: LocalTrainer['accept'];

  constructor(
    private readonly inner: LocalTrainer,
    private readonly model: CausalLM,
    private readonly sets: FederatedEvalSets,
    /** The LoRA layout of a round (the plan's, as the trainer uses it). */
    private readonly loraOf: (plan: RoundPlan) => LoraConfig = (plan) => plan.training?.lora ?? defaultLoraConfig(model),
  ) {
    if (inner.accept) this.accept = (plan) => inner.accept!(plan);
  }

  get numExamples(): number {
    return this.inner.numExamples;
  }

  async train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress) {
    const metrics = await evaluateGlobal(this.model, this.loraOf(plan), global, this.sets);
    // Liveness reaches the trainer's steps (heartbeats, yields, the attempt's end).
    const r = await this.inner.train(plan, global, progress);
    return { ...r, metrics: { ...(r.metrics ?? {}), ...metrics } };
  }
}

/** The aggregate metrics of the global adapter on the held-out sets (see the file comment). */
export async function evaluateGlobal(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, sets: FederatedEvalSets): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (sets.mcq?.length) {
    const r = await evaluateMcq(model, sets.mcq, { lora, adapter });
    if (r.examples > 0) Object.assign(out, { evalCount: r.examples, evalAcc: r.acc, evalAccNorm: r.acc_norm });
  }
  if (sets.instruct?.length) {
    const r = await completionLoss(model, sets.instruct, { lora, adapter });
    Object.assign(out, { evalLoss: r.loss, evalTokens: r.tokens });
    if (out.evalCount === undefined) out.evalCount = r.examples;
  }
  if (sets.general?.length) out.generalLoss = (await evaluate(model, lora, adapter, sets.general)).loss;
  return out;
}
