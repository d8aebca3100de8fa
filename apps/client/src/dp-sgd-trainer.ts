import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { LocalTrainer, RoundPlan, TrainingProgress } from '@fedlora/federation';
import type { ClientPrivacyGuard, DpSgdParams, NoiseCalibration } from '@fedlora/privacy';
import { assertDeltaForUnits, calibrateDpSgd } from '@fedlora/privacy';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { planUpdate } from '@fedlora/federation';
import { assertPlanVariant } from './model-trainer.js';
import type { DpSgdStepInfo, PerExampleMethod, UnitData } from '@fedlora/train';
import { dpSgdParams, evaluate, loraDimension, trainLocalDpSgd } from '@fedlora/train';
import { ReleasedUpdate, type TrainedUpdate } from './released-update.js';

/** Options of DpSgdTrainer. */
export interface DpSgdTrainerOptions {
  model: CausalLM;
  lora: LoraConfig;
  /**
   * Training data by privacy unit (`packUnits`: documents, a field's values, or sequences), or bare
   * packed sequences, each then its own unit (the `sequence` unit).
   */
  train: Int32Array[] | UnitData;
  /** Held-out sequences, used to report the global adapter's eval loss. */
  heldOut?: Int32Array[];
  /** Per-unit L2 clip C (of the sum of a unit's sequences' gradients). */
  clipNorm: number;
  /** At most this many sequences of a sampled unit per step (default DEFAULT_MAX_SEQUENCES_PER_UNIT). */
  maxSequencesPerUnit?: number;
  /** Noise std / C; absent: calibrated from `budget` (budget first). */
  noiseMultiplier?: number;
  /**
   * Budget first: with no `noiseMultiplier`, the multiplier that spends `epsilon` at `delta` over
   * `rounds` rounds of the plan's local steps and batch (q = batchSize / units) is calibrated
   * (calibrateDpSgd) at the first plan, and recorded in the ledger with each round. `rounds`
   * defaults to what the plan announces (`plan.training.plannedRounds`). A coordinator that announces
   * fewer rounds than it runs only makes the budget run out sooner: the guard still refuses any
   * round that would exceed it.
   */
  budget?: { epsilon: number; delta: number; rounds?: number };
  /** `ghost` (default): per-record norms and the clipped sum from one batched pass; `per-example`: one pass per record. */
  perExampleGradients?: PerExampleMethod;
  /**
   * The institution's record-level budget, kept in its own ledger (its unit: document, the field, or sequence). Without it the
   * rounds are still DP-SGD, but nothing stops an overspend.
   */
  guard?: ClientPrivacyGuard;
  /**
   * End this client's participation when it refuses a round on its budget (a real node: every
   * round of a federation costs the same {q, z, steps}, so the next would be refused too).
   * Simulations leave it off and keep declining, so the coordinator sees every refusal.
   */
  stopOnRefusal?: boolean;
  /**
   * A retry of the same round (same global adapter, same training and privacy part of the plan)
   * gets the update already trained and accounted for an attempt that aborted, without training
   * or spending again (post-processing; released-update.ts, which also says what a hostile
   * coordinator can do with it). Default true; false trains and spends afresh for every attempt.
   */
  reuseOnRetry?: boolean;
  /**
   * Where the update kept for a retry lives (default: in this trainer). A node rebuilt between
   * attempts (simulate's virtual population) passes one that outlives it, in memory only.
   */
  released?: ReleasedUpdate;
  /** CSPRNG for Poisson sampling and noise (cryptoRandomBytes in production). */
  rng: RandomBytes;
  weightDecay?: number;
  onStep?: (round: number, s: DpSgdStepInfo) => void;
  /**
   * Local report of a trained round: units, sequences that entered steps and that the per-unit cap
   * left out, clipped fraction. For the institution's own log; never sent to the coordinator.
   */
  onTrained?: (round: number, r: { units: number; sampledSequences: number; droppedSequences: number; clippedFraction: number }) => void;
  /** Local report of a retry served from the update kept for the round (nothing trained or spent). */
  onReused?: (round: number, attempt: number) => void;
  now?: () => Date;
}

/** The DP-SGD settings of a client config's `dpSgd` block that the trainer takes (the budget goes to the guard). */
export function dpSgdTrainerSettings(block: {
  clipNorm?: number;
  noiseMultiplier?: number;
  perExampleGradients?: PerExampleMethod;
  maxSequencesPerUnit?: number;
  reuseOnRetry?: boolean;
}): Pick<DpSgdTrainerOptions, 'clipNorm' | 'noiseMultiplier' | 'perExampleGradients' | 'maxSequencesPerUnit' | 'reuseOnRetry'> {
  return {
    clipNorm: block.clipNorm ?? DEFAULT_DP_SGD_CLIP_NORM,
    ...(block.noiseMultiplier !== undefined ? { noiseMultiplier: block.noiseMultiplier } : {}),
    perExampleGradients: block.perExampleGradients ?? 'ghost',
    ...(block.maxSequencesPerUnit !== undefined ? { maxSequencesPerUnit: block.maxSequencesPerUnit } : {}),
    ...(block.reuseOnRetry !== undefined ? { reuseOnRetry: block.reuseOnRetry } : {}),
  };
}

/**
 * Default per-unit clip C of DP-SGD when none is configured. With AdamW the update's scale does not
 * depend on C once most units are clipped (the noise is z C and the signal at most C), so C only
 * needs to sit below most units' gradient norms; measured on the simulated SOTU records with the
 * bundled model, unit gradient norms are well above it (see the README), so nearly every unit is
 * clipped and C acts as a normaliser, the regime De et al. 2022 ("Unlocking High-Accuracy
 * Differentially Private Image Classification through Scale") recommend.
 */
export const DEFAULT_DP_SGD_CLIP_NORM = 0.1;

/**
 * The LocalTrainer of an institution that protects each privacy unit (a document, or all records
 * of one patient_id) with DP-SGD (Abadi et al. 2016; units: Chua et al. 2024): a round runs the
 * plan's local steps with Poisson sampling of units at rate q = min(1, batchSize / units),
 * per-unit clipping and exact grid Gaussian noise. Before training
 * it checks the round's cost {q, z, steps} against its own record-level budget and refuses a
 * round that would exceed it (the coordinator learns only "refused: budget"); after training it
 * commits the spend to its own signed ledger before the update leaves.
 */
export class DpSgdTrainer implements LocalTrainer {
  readonly numExamples: number;

  constructor(private readonly opts: DpSgdTrainerOptions) {
    const units = Array.isArray(opts.train) ? opts.train.length : opts.train.units.length;
    if (units === 0) throw new RangeError('the client has no training sequences: its data file is empty or shorter than one sequence');
    if (!(opts.clipNorm > 0)) throw new RangeError(`dpSgd.clipNorm must be > 0, received ${opts.clipNorm}`);
    if (opts.noiseMultiplier === undefined && !opts.budget) throw new RangeError('dpSgd needs a noiseMultiplier or a budget epsilon to calibrate one from, received neither');
    if (opts.noiseMultiplier !== undefined && !(opts.noiseMultiplier >= 0)) throw new RangeError(`dpSgd.noiseMultiplier must be >= 0, received ${opts.noiseMultiplier}`);
    // delta must be meaningful for this data: at most 1 / (number of privacy units).
    const delta = opts.budget?.delta ?? opts.guard?.budgetLimit.delta;
    if (delta !== undefined) assertDeltaForUnits(delta, units, 'privacy units');
    const method = opts.perExampleGradients;
    if (method !== undefined && method !== 'ghost' && method !== 'per-example') {
      throw new RangeError(`dpSgd.perExampleGradients must be "ghost" or "per-example", received ${JSON.stringify(method)}`);
    }
    this.numExamples = units;
    this.released = opts.released ?? new ReleasedUpdate();
  }

  private readonly calibrations = new Map<string, NoiseCalibration>();
  private readonly released: ReleasedUpdate;

  /** The calibration behind a plan's noise multiplier (budget first), or undefined when it was given. */
  calibration(plan: RoundPlan): NoiseCalibration | undefined {
    const b = this.opts.budget;
    if (this.opts.noiseMultiplier !== undefined || !b) return undefined;
    const rounds = b.rounds ?? plan.training?.plannedRounds;
    if (!(Number.isInteger(rounds) && rounds! >= 1)) {
      throw new RangeError('dpSgd.epsilon without noiseMultiplier needs the planned number of rounds to spread the budget over: set dpSgd.rounds (the coordinator did not announce plannedRounds)');
    }
    const key = `${plan.batchSize}:${plan.localSteps}:${rounds}`;
    let c = this.calibrations.get(key);
    if (!c) {
      c = calibrateDpSgd({ targetEpsilon: b.epsilon, delta: b.delta, units: this.numExamples, expectedUnitsPerStep: plan.batchSize, steps: rounds! * plan.localSteps, dimension: loraDimension(this.opts.model, this.opts.lora) });
      this.calibrations.set(key, c);
    }
    return c;
  }

  private noiseMultiplier(plan: RoundPlan): number {
    return this.opts.noiseMultiplier ?? this.calibration(plan)!.noiseMultiplier;
  }

  /** What a round of `plan` costs this institution's privacy units. */
  roundParams(plan: RoundPlan): DpSgdParams {
    assertPlanVariant(plan, this.opts.lora);
    return dpSgdParams({
      samplingRate: Math.min(1, plan.batchSize / this.numExamples),
      clipNorm: this.opts.clipNorm,
      noiseMultiplier: this.noiseMultiplier(plan),
      steps: plan.localSteps,
      dimension: loraDimension(this.opts.model, this.opts.lora),
    });
  }

  async accept(plan: RoundPlan): Promise<{ accept: true } | { accept: false; reason: string; stop?: string; detail?: string }> {
    const guard = this.opts.guard;
    if (!guard) return { accept: true };
    // A retry this client will serve from the update it already paid for costs nothing more.
    if (this.reusing() && this.released.covers(plan)) return { accept: true };
    const decision = guard.plan(this.roundParams(plan));
    if (decision.accept) return { accept: true };
    await guard.refuse(plan.round, decision.message, { time: this.time() });
    if (!this.opts.stopOnRefusal) return { accept: false, reason: 'refused: budget', detail: `record-level: ${decision.message}` };
    const stop =
      `record-level privacy budget exhausted: round ${plan.round} ${decision.message.replace(/^refused: the round /, '')}; ` +
      `record-level epsilon spent so far ${guard.spent().toFixed(4)} (ledger ${guard.ledgerPath}). Training stops: a larger dpSgd.epsilon needs the data owner's decision`;
    return { accept: false, reason: 'refused: budget', stop, detail: `record-level: ${decision.message}` };
  }

  async train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress): Promise<TrainedUpdate> {
    const reused = this.reusing() ? this.released.reuse(plan, global) : undefined;
    if (reused) {
      this.opts.onReused?.(plan.round, plan.attempt);
      return reused;
    }
    const { model, lora, guard } = this.opts;
    const params = this.roundParams(plan);
    // The check again: train must never overspend, even if a caller skipped accept.
    const decision = guard?.plan(params);
    if (decision && !decision.accept) throw new RangeError(`round ${plan.round}: ${decision.message}`);
    // An attempt that closes while the last step runs does not waste it: the release is accounted
    // and kept below, and the retry of the round reuses it; the closure is reported after that.
    let closedAfterLastStep: unknown;
    const r = await trainLocalDpSgd(model, lora, global, this.opts.train, {
      steps: params.steps,
      samplingRate: params.samplingRate,
      clipNorm: params.clipNorm,
      noiseMultiplier: this.noiseMultiplier(plan),
      learningRate: plan.learningRate,
      rng: this.opts.rng,
      weightDecay: this.opts.weightDecay ?? 0,
      perExampleGradients: this.opts.perExampleGradients ?? 'ghost',
      ...(this.opts.maxSequencesPerUnit !== undefined ? { maxSequencesPerUnit: this.opts.maxSequencesPerUnit } : {}),
      onStep: async (s) => {
        this.opts.onStep?.(plan.round, s);
        try {
          await progress?.(s.step);
        } catch (err) {
          if (s.step < params.steps || !this.reusing()) throw err;
          closedAfterLastStep = err;
        }
      },
    });
    const calibration = this.calibration(plan);
    if (guard) await guard.record(plan.round, r.privacy, { time: this.time(), ...(calibration ? { calibration } : {}) });
    this.opts.onTrained?.(plan.round, { units: r.numExamples, sampledSequences: r.sampledSequences, droppedSequences: r.droppedSequences, clippedFraction: r.clippedFraction });
    const metrics: Record<string, number> = { tokens: r.tokens, steps: r.steps, clippedFraction: r.clippedFraction };
    if (guard) metrics.recordEpsilon = guard.spent();
    if (this.opts.heldOut?.length) metrics.globalEvalLoss = (await evaluate(model, lora, global, this.opts.heldOut)).loss;
    const update = { delta: planUpdate(plan, r.adapter, global), numExamples: this.numExamples, trainLoss: Number.isFinite(r.trainLoss) ? r.trainLoss : 0, metrics };
    if (this.reusing()) this.released.keep(plan, global, update);
    if (closedAfterLastStep !== undefined) throw closedAfterLastStep;
    return update;
  }

  private reusing(): boolean {
    return this.opts.reuseOnRetry ?? true;
  }

  /** Record-level epsilon spent so far (at the budget's delta), when a budget is kept. */
  spentEpsilon(): number | undefined {
    return this.opts.guard?.spent();
  }

  private time(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }
}
