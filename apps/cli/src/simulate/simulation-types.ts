import type { LoraConfig, LoraVariant } from '@fedlora/model';
import type { NoiseCalibration } from '@fedlora/privacy';
import type { CohortSampling, EventLogger, LocalTrainer, RoundEvaluation, RoundSummary, StrategyOptions } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import type { SimulationSecAgg } from './secure-setup.js';
import type { Partition } from './partition.js';
import type { SimulationDashboard } from './simulation-dashboard.js';
import type { TrainerFactory } from './node-spec.js';

/** Characters of one simulated record (a document: DP-SGD's default privacy unit). */
export const SIMULATED_RECORD_CHARS = 400;

/** Settings of a simulated federation on one machine. */
export interface SimulationOptions {
  clients: number;
  rounds: number;
  localSteps: number;
  batchSize: number;
  learningRate: number;
  seqLen: number;
  /** Characters of text per client (before the held-out split). */
  charsPerClient: number;
  /** Held-out sequences per client used for the eval loss (the rest are dropped for speed). */
  evalSequences: number;
  evalFraction: number;
  minClients?: number;
  /** Cohort per round: a count (>= 1) or a fraction (0, 1) of the population; all when unset. */
  clientsPerRound?: number;
  /** How the coordinator draws the cohort (default uniform): fixed-size, or Poisson (each institution independently). */
  sampling?: 'uniform' | 'poisson';
  /** How the SOTU text is split among the clients (default era: today's natural split). */
  partition?: Partition;
  roundDeadlineMs: number;
  /** Once minClients have reported, close the round after this long even if others have not. */
  waitAfterMinimumMs?: number;
  strategy: StrategyOptions;
  /** FedProx proximal coefficient mu (with strategy fedprox; default 0.01). */
  proximalMu?: number;
  lora?: Partial<LoraConfig>;
  /** `ffa`: FFA-LoRA (A frozen at the shared seeded initialisation, only B trained, sent and averaged). Default `lora`. */
  loraVariant?: LoraVariant;
  modelDir?: string;
  backend?: string;
  seed: string;
  /** Institution-level DP-FedAvg (central noise). */
  privacy?: SimulationPrivacy;
  /** Secure aggregation (SecAgg+), with optional dropout injection. */
  secagg?: SimulationSecAgg;
  /** Record-level DP-SGD inside each client, each with its own record-level budget and ledger. */
  dpSgd?: SimulationDpSgd;
  /** Where ledgers are written (default: a new temporary directory). */
  outDir?: string;
  /** Serve the coordinator's web dashboard during the run (and `lingerMs` after it). */
  dashboard?: SimulationDashboard;
  /** Clients that register and then never answer (fault injection for tests and demos). */
  silentClients?: number;
  logger?: EventLogger;
  onProgress?: (e: ProgressEvent) => void;
  /**
   * Builds each materialised institution's local trainer (default: in-process ModelTrainer or
   * DpSgdTrainer on the shared base model): the seam where training can move to worker processes.
   */
  trainerFactory?: TrainerFactory;
  /** Local trainings at once across the cohort (default: the number of cores); the rest wait their turn. */
  trainingSlots?: number;
  /** Idle institutions checking in at once (default 16); each check-in is one GetTask over a shared channel. */
  checkInConcurrency?: number;
  /** Test hook: wrap each client's trainer (for example to record the deltas it sends). */
  wrapTrainer?: (name: string, trainer: LocalTrainer) => LocalTrainer;
  /**
   * `text` (default): each client fine-tunes on its era of SOTU text. `qa`: instruction tuning on
   * the SOTU QA set (sotu-qa.ts, prompt-completion, loss on the answer only); each client
   * evaluates every global adapter on its held-out multiple-choice questions (federated
   * evaluation, reported per round; LoRA on the attention and MLP projections), and the eval loss is that of held-out Moby-Dick chapters
   * (the bundled model's general text: forgetting).
   */
  task?: 'text' | 'qa';
  /** Local training in this many worker processes (workers.ts; task text without DP-SGD); unset: in this process. */
  workers?: number;
  /** Test hook: called at the end of each round with the previous and new global adapters. */
  onRoundAdapters?: (round: number, before: NamedTensors, after: NamedTensors | null) => void;
}

/** Institution-level DP settings of a simulation. */
export interface SimulationPrivacy {
  mode: 'central' | 'distributed';
  clipNorm: number;
  noiseMultiplier: number;
  delta: number;
  /** Each institution's own budget (epsilon at `delta`); rounds that would exceed it are refused. */
  clientEpsilon: number;
  /** Per-client budgets that differ from clientEpsilon (by client name). */
  clientEpsilonOverrides?: Record<string, number>;
  /**
   * Quantile-based adaptive clipping (Andrew et al. 2021; central mode only): `clipNorm` is the
   * first round's C; defaults are the paper's (gamma 0.5, eta_C 0.2, sigma_b max(m/20, z)).
   */
  adaptiveClipping?: { targetQuantile?: number; learningRate?: number; bitNoiseStd?: number };
  /** Budget first: how `noiseMultiplier` was calibrated (recorded in the plans and the federation ledger). */
  calibration?: NoiseCalibration;
}

/** Record-level DP-SGD settings of a simulation (every client uses them). */
export interface SimulationDpSgd {
  /** Per-unit clip C; default DEFAULT_DP_SGD_CLIP_NORM. */
  clipNorm?: number;
  /** Noise std / C; absent: each client calibrates it from `epsilon` over the planned rounds (budget first). */
  noiseMultiplier?: number;
  /** The privacy unit: `document` (default: one simulated record) or `sequence`. */
  privacyUnit?: 'document' | 'sequence';
  /** At most this many sequences of a unit per step (default 8). */
  maxSequencesPerUnit?: number;
  /** Each client's budget per unit (epsilon at `delta`); rounds that would exceed it are refused. Default 1e9. */
  epsilon?: number;
  /** Default: the institution-level delta, else 1e-5. */
  delta?: number;
}

/** Progress notifications for displays. */
export type ProgressEvent =
  | { kind: 'ready'; backend: string; clients: Array<{ name: string; era: string; trainSequences: number }> }
  | { kind: 'step'; client: string; round: number; step: number; steps: number; loss: number; tokensPerSecond: number }
  | { kind: 'round'; summary: SimulationRound };

/** One round of the report. */
export interface SimulationRound {
  /** Task qa: the federated evaluation of the global adapter this round started from (clients' held-out questions). */
  evaluation?: RoundEvaluation;
  round: number;
  attempt: number;
  status: RoundSummary['status'];
  participants: number;
  dropped: string[];
  trainLoss: number | null;
  evalLoss: number | null;
  durationMs: number;
  /** The federation's cumulative epsilon at the configured delta (with DP only). */
  epsilon?: number;
  /** Institution-level DP: the clip norm C of this round (changes between rounds with adaptive clipping). */
  clipNorm?: number;
  /** Record-level DP-SGD: the largest cumulative record-level epsilon over the clients. */
  recordEpsilon?: number;
  /** Clients that declined the round (for example: privacy budget). */
  declined?: string[];
  /** How the coordinator drew this round's cohort (population, expected and drawn size). */
  sampling?: CohortSampling;
  /** Secure aggregation: clients whose updates are in the sum. */
  survivors?: number;
  /** Secure aggregation: largest coordinate difference between the secure and the plain average of the same clipped updates. */
  aggregateMaxAbsError?: number;
  /** Distributed DP: measured std of the aggregate's noise (on the average), and the planned one. */
  noiseStd?: number;
  plannedNoiseStd?: number;
  /**
   * Without secure aggregation: ||mean(B_i A_i) - mean(B_i) mean(A_i)||_F / ||mean(B_i A_i)||_F over
   * the aggregated clients' adapters, how far averaging A and B separately is from averaging the
   * updates (0 up to float rounding with FFA-LoRA, where every A_i is the same A).
   */
  aggregationError?: number;
}

/** What `fedlora simulate --json` prints. */
export interface SimulationReport {
  backend: string;
  model: string;
  /** Task qa: instruction tuning on SOTU QA (see SimulationOptions.task). */
  task?: 'qa';
  /** Task qa: what evalLoss measures (general text, so a rise shows forgetting). */
  evalLossOf?: string;
  /** Task qa: the final global adapter's multiple-choice accuracy over all clients' held-out questions (two choices, balanced: chance 0.5). */
  finalEvaluation?: { count: number; acc: number; accNorm: number };
  /** Per-client sizes: characters of text (task text), training and held-out sequences. */
  clients: Array<{ name: string; era: string; chars?: number; trainSequences: number; heldOutSequences: number; trainUnits?: number; dpSgdCalibration?: NoiseCalibration }>;
  initialEvalLoss: number;
  rounds: SimulationRound[];
  finalEvalLoss: number | null;
  finalAdapterSha256: string | null;
  /** LoRA variant trained: `lora` (A and B) or `ffa` (B only, A frozen). */
  loraVariant: LoraVariant;
  /** Values of the adapter (A and B, what the PEFT file holds). */
  adapterParameters: number;
  /** Values of every update (what is clipped, noised and securely summed): all of them with `lora`, the B matrices with `ffa`. */
  updateParameters: number;
  durationMs: number;
  /** Registered institutions (identities with a data partition), the expected cohort per round, and the most materialised at once. */
  population: { size: number; cohort: number; peakMaterialised: number; materialisations: number };
  /** Wall seconds of each round attempt, in order (as `rounds[].durationMs`). */
  secondsPerRound: number[];
  /** Peak resident set size and heap of this process during the run (sampled every 250 ms; the coordinator shares it). */
  memory: { peakRssBytes: number; peakHeapUsedBytes: number };
  /** DP settings, when enabled. */
  privacy?: SimulationPrivacy;
  /** Record-level DP-SGD settings, when enabled. */
  dpSgd?: SimulationDpSgd;
  /** Paths of every ledger written: the federation's first, then each client's. */
  ledgers?: string[];
  /** The auditor's trust anchor for those ledgers (writer -> public key; `fedlora audit --trusted-keys`). */
  trustedKeys?: string;
  /** With --workers: how many training processes, and the sum of their peak RSS (bytes). */
  workers?: { count: number; peakRssBytes: number };
}

