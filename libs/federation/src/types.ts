import type { CohortSampling } from './cohort-sampling.js';
import type { NamedTensors } from '@fedlora/tensor';
import type { RoundEvaluation } from './round-evaluation.js';

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
  /** Strategy, privacy and secure-aggregation parameters (JSON-serialisable). */
  extra: Record<string, unknown>;
  /** How the coordinator drew this round's cohort (coordinator side: the ledger accounts from it; not sent to clients over gRPC yet). */
  sampling?: CohortSampling;
}

/** The answer to a client asking what to do next. */
export type Task =
  | { kind: 'wait'; retryAfterMs: number }
  | { kind: 'train'; plan: RoundPlan }
  /** The run is over; `failed` (why the run failed at the coordinator) when it did not complete. */
  | { kind: 'finished'; failed?: string };

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
