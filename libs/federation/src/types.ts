import type { DpFedAvgConfig, LedgerHead } from '@fedlora/privacy';
import type { EncodingParams, Stage } from '@fedlora/secagg';
import type { CohortSampling } from './cohort-sampling.js';
import type { NamedTensors } from '@fedlora/tensor';
import type { RoundEvaluation } from './round-evaluation.js';
import type { FederationErrorCode } from './errors.js';

/** Name and shape of one tensor of the global adapter, as announced in a round plan. */
export interface TensorLayout {
  name: string;
  shape: number[];
}

/** What the coordinator asks of the cohort in one round. Fixed when the round opens. */
export interface RoundPlan {
  round: number;
  /** Retry counter for this round number (a round that aborted is rerun with attempt + 1). */
  attempt: number;
  adapterSha256: string;
  tensors: TensorLayout[];
  localSteps: number;
  learningRate: number;
  batchSize: number;
  deadlineUnixMs: number;
  /** Binds uploads to this round attempt: an upload with another nonce is refused. */
  nonce: string;
  /** Local-training parameters beyond steps, learning rate and batch size. */
  training?: PlannedTraining;
  /** Institution-level DP-FedAvg parameters (read them through plannedPrivacy, which completes distributed mode from `secagg`). */
  privacy?: PlannedPrivacy;
  /** Secure aggregation (SecAgg+): what clients need to run their side. */
  secagg?: SecureRoundPlan;
  /** How the coordinator drew this round's cohort (coordinator side: the ledger accounts from it; not sent to clients over gRPC yet). */
  sampling?: CohortSampling;
  /**
   * The federation privacy ledger's head when the round opened (entries and hash of the last
   * line). Institutions record it in their own ledgers, which anchors the federation ledger: the
   * audit catches a later truncation or rewrite, and a client refuses a head that goes backwards.
   */
  ledgerHead?: LedgerHead;
  /**
   * Coordinator side only (never sent): the largest FedAvg weight an update may carry, whatever
   * example count it claims (see exampleWeightCap); absent: no cap.
   */
  weightCap?: number;
}

/** The parts of a plan that the federation's configuration supplies for each round. */
export type PlanParts = Pick<RoundPlan, 'training' | 'privacy' | 'ledgerHead'>;

/** LoRA settings the plan asks clients to train with (the shape of @fedlora/model's LoraConfig). */
export interface PlannedLora {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  /** `lora` (default): A and B are trained and sent; `ffa`: only B (A frozen and shared), see lora-variant.ts. */
  variant?: 'lora' | 'ffa';
}

/** Local-training parameters of a round beyond steps, learning rate and batch size. */
export interface PlannedTraining {
  /** Tokens per training sequence. */
  seqLen?: number;
  lora?: PlannedLora;
  /**
   * FedProx proximal coefficient mu (Li et al. 2020, "Federated Optimization in Heterogeneous
   * Networks", Eq. 2); 0 or absent: plain local training.
   */
  proximalMu?: number;
  /** Rounds the federation plans in all (a DP-SGD client spreads a budget given alone over them). */
  plannedRounds?: number;
}

/** Institution-level DP parameters as a round plan carries them (plan.privacy). */
export type PlannedPrivacy = DpFedAvgConfig & { delta: number; dimension: number };

/** What clients need to run their side of secure aggregation (plan.secagg). */
export interface SecureRoundPlan {
  /** Client name -> protocol id (1-based, in sorted cohort order). */
  ids: Record<string, number>;
  /** Client name -> Ed25519 public key (base64). */
  roster: Record<string, string>;
  k: number;
  t: number;
  encoding: EncodingParams;
  /** Public per-round seed of the randomized Hadamard rotation (hex). */
  rotationSeed: string;
  /**
   * Adaptive clipping: integer scale S of the extra coordinate after the encoded update, where
   * each client puts S (2 b_i - 1) plus its share of integer noise; the coordinator learns only
   * the noisy sum, S (2 sum b_i - n) + noise.
   */
  countScale?: number;
  /**
   * Federated evaluation summed securely (secure-evaluation.ts): when set, SECURE_EVAL_WORD_COUNT
   * words of evaluation metrics follow the update (and the count word) in every masked input, the
   * losses in units of 1/evalScale nat.
   */
  evalScale?: number;
}

/** A client's training report: with its plain update's header, or with its first masked-input message. */
export interface ClientReport {
  numExamples: number;
  trainLoss: number;
  /** The plain update header's metrics (federated evaluation, round-evaluation.ts); a secure report carries none (its evaluation is summed inside SecAgg+: secure-evaluation.ts). */
  metrics?: Record<string, number>;
}

/** What a secure-aggregation exchange answers (see SecureRound.exchange). */
export interface SecAggReply {
  kind: 'message' | 'wait' | 'excluded' | 'finished' | 'aborted';
  /** The stage of a 'message' (and of 'wait'/'excluded'), '' otherwise. */
  stage: Stage | '';
  payload: Uint8Array;
}

/**
 * One adaptive-clipping step (Andrew et al. 2021, Algorithm 1) taken by a round's aggregation:
 * the released noisy fraction of unclipped updates and the clip norm it sets for the next round.
 */
export interface AdaptiveClippingStep {
  noisyUnclippedFraction: number;
  nextClipNorm: number;
}

/** The answer to a client asking what to do next. */
export type Task =
  | { kind: 'wait'; retryAfterMs: number }
  | { kind: 'train'; plan: RoundPlan }
  /** The run is over; `failed` (why the run failed at the coordinator) when it did not complete. */
  | { kind: 'finished'; failed?: string };

/**
 * One session's answer to a batched check-in: a wait or finished task; `drawn` when it is in the
 * cohort of the open round attempt (its own GetTask returns the plan); or the error code that
 * refused it (and why).
 */
export type CheckInAnswer = { task: Exclude<Task, { kind: 'train' }> } | { drawn: { round: number; nonce: string } } | { refused: FederationErrorCode; reason: string };

/** Metadata that precedes a client's update tensors. */
export interface UpdateHeader {
  clientId: string;
  round: number;
  nonce: string;
  numExamples: number;
  trainLoss: number;
  tensors: TensorLayout[];
  metrics: Record<string, number>;
}

/** A client's complete update: delta = local adapter - global adapter. */
export interface ClientUpdate {
  header: UpdateHeader;
  delta: NamedTensors;
}

/** One row of the coordinator's history, also what `simulate` and `status` report. */
export interface RoundSummary {
  round: number;
  attempt: number;
  status: 'completed' | 'aborted';
  participants: number;
  /** Names of the clients whose updates were aggregated. */
  participantNames: string[];
  cohort: number;
  dropped: string[];
  declined: string[];
  trainLoss: number | null;
  numExamples: number;
  adapterSha256: string | null;
  reason?: string;
  startedAt: number;
  endedAt: number;
  metrics: Record<string, number>;
  /**
   * Cohort members caught misbehaving in this attempt (#16 finding 6: share ciphertexts that did not
   * open, an upload that stopped part-way, revealed shares inconsistent with a commitment). The round
   * went on without them; they are left out of this round's later attempts.
   */
  misbehaved?: Array<{ client: string; reason: string }>;
  /** The adaptive-clipping step of a completed round with adaptive clipping. */
  adaptiveClipping?: AdaptiveClippingStep;
  /**
   * Federated evaluation of the global adapter this round started from: the institutions'
   * held-out metrics reported with their updates, combined (round-evaluation.ts). Absent when none evaluated.
   */
  evaluation?: RoundEvaluation;
  /**
   * Set on rounds that ran before the coordinator's last restart, read back from its store: only
   * the round, attempt, status, participant names, reason and times are kept there (trainLoss null,
   * numExamples 0, adapterSha256 null: see the checkpoint for the adapter).
   */
  restored?: true;
}

/** A client as the coordinator knows it. */
export interface ClientRecord {
  clientId: string;
  name: string;
  numExamples: number;
  registeredAt: number;
  lastSeen: number;
}
