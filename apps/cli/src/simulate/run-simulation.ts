import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { LoraVariant } from '@fedlora/model';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel, validateLoraConfig } from '@fedlora/model';
import type { ClientPrivacyGuard } from '@fedlora/privacy';
import { TRUSTED_KEYS_FILE, calibrateDpFedAvg, generateLedgerKey, resolveAdaptiveClipping, writeTrustedKeys, type NoiseCalibration } from '@fedlora/privacy';
import type { CohortSampling, EventLogger, LocalTrainer, RoundEvaluation, RoundPlan, RoundSummary, StrategyOptions } from '@fedlora/federation';
import { flattenInPlanOrder, plannedPrivacy, silentLogger, updateDimension, updateLayout } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { cryptoRandomBytes, numElements, seededRandomBytes } from '@fedlora/tensor';
import { evaluate, evaluateMcq, instructSegments, instructTrainingSequences, packUnits, splitRecordsByUnit, tokenizeToSequences, type McqItem, type UnitData } from '@fedlora/train';
import { GrpcConnection } from '@fedlora/transport-grpc';
import type { FederationPrivacy, RefusalInfo } from '@fedlora/coordinator';
import { buildCoordinator, createFederationPrivacy, distributedNoiseStddevPerClient } from '@fedlora/coordinator';
import type { BuiltClient, ClientSpec } from '@fedlora/client';
import { DEFAULT_DP_SGD_CLIP_NORM, DpSgdTrainer, ModelTrainer, buildClient } from '@fedlora/client';
import type { SimulationSecAgg } from './secure-setup.js';
import { createSecureSimulation } from './secure-setup.js';
import type { Partition } from './partition.js';
import { partitionCorpus } from './partition.js';
import { splitIntoRecords } from './sotu-partition.js';
import { qaLoraTargets, sotuQa } from './sotu-qa.js';
import { mobyDickSplit } from '../model/pretrain.js';
import { createAggregationProbe } from './aggregation-error.js';
import type { SimulationDashboard } from './simulation-dashboard.js';
import { simulationDashboard } from './simulation-dashboard.js';
import type { TrainingWorkerPool } from './workers.js';
import { startSimulationWorkers } from './workers-sim.js';

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

/**
 * Runs a whole federation on this machine: a real coordinator with its gRPC server on
 * 127.0.0.1 and N real clients dialling it, each with a different era of the State of the Union
 * addresses and a held-out part of it. Reports, per round, the participants, the mean train loss
 * and the held-out eval loss of the new global adapter.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  let o = options;
  const started = performance.now();
  const backend = await initBackend({ backend: o.backend });
  const modelDir = o.modelDir ?? (process.env.FEDLORA_MODEL_DIR || DEFAULT_BASE_MODEL_DIR);
  const model: CausalLM = await loadModel(modelDir);
  const lora: LoraConfig = { ...defaultLoraConfig(model), ...(o.task === 'qa' ? { targetModules: qaLoraTargets(model.config.modelType) } : {}), ...o.lora, variant: o.loraVariant ?? o.lora?.variant ?? 'lora' };
  validateLoraConfig(lora);
  const log = o.logger ?? silentLogger;

  if (o.task === 'qa' && o.dpSgd) throw new RangeError('simulate: --task qa does not run with DP-SGD yet (drop the --dp-sgd-* options)');
  const corpora = o.task === 'qa' ? [] : partitionCorpus(o.clients, o.charsPerClient, o.partition ?? { kind: 'era' }, { seed: o.seed, recordChars: SIMULATED_RECORD_CHARS });
  // Each address is cut into records (short documents); whole records are held out, so runs with
  // and without DP-SGD train and evaluate on the same text.
  const textClients = corpora.map((c) => {
    const records = c.documents.flatMap((d) => splitIntoRecords(d, SIMULATED_RECORD_CHARS)).map((text) => ({ text }));
    const split = splitRecordsByUnit(records, { unit: 'document' }, o.evalFraction);
    const heldOut = tokenizeToSequences(model, split.heldOut.map((r) => r.text), o.seqLen).slice(0, o.evalSequences);
    const units: UnitData | undefined = o.dpSgd ? packUnits(model, split.train, o.seqLen, { unit: o.dpSgd.privacyUnit ?? 'document' }) : undefined;
    const train = units ? units.sequences : tokenizeToSequences(model, split.train.map((r) => r.text), o.seqLen);
    return { name: c.name, era: c.era, chars: c.documents.reduce((n, d) => n + d.length, 0), train, units, heldOut, mcq: undefined as McqItem[] | undefined };
  });
  const clients = o.task === 'qa' ? qaClients(model, o) : textClients;
  o.onProgress?.({ kind: 'ready', backend: backend.name, clients: clients.map((c) => ({ name: c.name, era: c.era, trainSequences: c.train.length })) });
  const allHeldOut = clients.flatMap((c) => c.heldOut);
  const evalLoss = async (adapter: NamedTensors) => (await evaluate(model, lora, adapter, allHeldOut, { batchSize: 8 })).loss;

  const initialAdapter = initLoraAdapter(model, lora, seededRandomBytes(`lora-init:${o.seed}`));
  const updateParameters = updateDimension(updateLayout(initialAdapter, lora.variant!));
  o = recalibratedForDimension(o, updateParameters);
  let fedPrivacy: FederationPrivacy | undefined;
  const ledgers: string[] = [];
  // The expected cohort: everyone, or clientsPerRound (a count or a fraction of the population).
  const cohortSize = o.clientsPerRound === undefined ? o.clients : Math.min(o.clients, o.clientsPerRound < 1 ? Math.ceil(o.clientsPerRound * o.clients) : Math.floor(o.clientsPerRound));
  const minClients =
    o.minClients ??
    (o.secagg && o.secagg.dropout > 0 ? Math.max(2, Math.ceil(cohortSize / 2)) : o.sampling === 'poisson' && o.clientsPerRound !== undefined ? Math.max(1, Math.ceil(cohortSize / 2)) : cohortSize);
  if (minClients > cohortSize) throw new RangeError(`simulate: --min-clients ${minClients} exceeds the cohort of ${cohortSize} per round: lower --min-clients or raise --clients-per-round`);
  // What the clients' budget guards see in the plan: amplification by sampling only for a Poisson draw
  // in central mode (the ledger records the draw and why: accountedSampling in @fedlora/privacy).
  const plannedSamplingRate = o.privacy?.mode !== 'distributed' && o.sampling === 'poisson' && cohortSize < o.clients ? cohortSize / o.clients : 1;
  const distributed = o.privacy?.mode === 'distributed';
  if (distributed && !o.secagg) throw new RangeError('simulate: distributed noise needs secure aggregation (add --secagg): each update would otherwise leave with only its own share of noise');
  if (o.privacy?.adaptiveClipping && !distributed && o.secagg) {
    throw new RangeError(
      'simulate: adaptive clipping with --dp-mode central needs each clipped-indicator bit, which --secagg hides: use --dp-mode distributed with --secagg (the bits ride in the secure sum), or drop --secagg',
    );
  }
  const noiseStddevPerClient = distributed ? distributedNoiseStddevPerClient(o.privacy!.noiseMultiplier, o.privacy!.clipNorm, minClients) : 0;
  // Distributed adaptive clipping: every secure round is sized for the clip norm the federation privacy holds at that moment.
  const perRound = distributed && o.privacy?.adaptiveClipping ? () => fedPrivacy!.perRound!() : undefined;
  const secure = o.secagg ? createSecureSimulation(clients.map((c) => c.name), { ...o.secagg, seed: o.seed, noiseStddevPerClient, ...(perRound ? { perRound } : {}) }) : undefined;
  // One ledger key per institution, shared by its institution-level and record-level ledgers (the audit requires it).
  const clientKeys = new Map(clients.map((c) => [c.name, generateLedgerKey().secretKey]));
  const outDir = o.privacy || o.dpSgd ? (o.outDir ?? (await mkdtemp(join(tmpdir(), 'fedlora-sim-')))) : '';
  // The public half of every ledger key, for the auditor (this one operator holds them all here).
  const trustedKeysPath = join(outDir, TRUSTED_KEYS_FILE);
  const coordinatorLedgerKey = generateLedgerKey();
  if (outDir) writeTrustedKeys(trustedKeysPath, { coordinator: coordinatorLedgerKey.publicKey, ...Object.fromEntries([...clientKeys].map(([name, k]) => [name, Buffer.from(k.subarray(32)).toString('hex')])) });
  if (o.privacy) {
    fedPrivacy = await createFederationPrivacy({
      config: distributed
        ? { mode: 'distributed', clipNorm: o.privacy.clipNorm, noiseMultiplier: o.privacy.noiseMultiplier, samplingRate: plannedSamplingRate, secureAggregation: true, noise: 'skellam', minSurvivors: minClients }
        : { mode: 'central', clipNorm: o.privacy.clipNorm, noiseMultiplier: o.privacy.noiseMultiplier, samplingRate: plannedSamplingRate, secureAggregation: !!o.secagg },
      delta: o.privacy.delta,
      dimension: updateParameters,
      ledgerPath: join(outDir, 'federation-ledger.jsonl'),
      signer: { writer: 'coordinator', secretKey: coordinatorLedgerKey.secretKey },
      rng: cryptoRandomBytes,
      ...(o.privacy.calibration ? { calibration: o.privacy.calibration } : {}),
      ...(o.privacy.adaptiveClipping
        ? {
            adaptive: resolveAdaptiveClipping({
              noiseMultiplier: o.privacy.noiseMultiplier,
              expectedClients: o.clients,
              initialClip: o.privacy.clipNorm,
              targetQuantile: o.privacy.adaptiveClipping.targetQuantile,
              learningRate: o.privacy.adaptiveClipping.learningRate,
              ...(o.privacy.adaptiveClipping.bitNoiseStd !== undefined ? { countNoiseStd: o.privacy.adaptiveClipping.bitNoiseStd } : {}),
            }),
          }
        : {}),
    });
    ledgers.push(fedPrivacy.ledgerPath);
  }
  // Each institution's node, built by the client's composition root as `fedlora client` builds one
  // (build-client.ts): its budgets (one ledger key per institution for both), trainer stack and client loop.
  const guards = new Map<string, ClientPrivacyGuard>();
  const recordGuards = new Map<string, ClientPrivacyGuard>();
  const dpSgdTrainers = new Map<string, DpSgdTrainer>();
  const nodeSpec = (c: (typeof clients)[number], address: string): ClientSpec => {
    const onStep = (round: number, s: { step: number; loss: number; tokensPerSecond: number }) =>
      o.onProgress?.({ kind: 'step', client: c.name, round, step: s.step, steps: o.localSteps, loss: s.loss, tokensPerSecond: s.tokensPerSecond });
    const dp = o.dpSgd;
    return {
      name: c.name,
      coordinator: { address },
      secretKey: clientKeys.get(c.name)!,
      budgets: {
        ...(o.privacy
          ? { institution: { ledgerPath: join(outDir, 'clients', `${c.name}-ledger.jsonl`), epsilon: o.privacy.clientEpsilonOverrides?.[c.name] ?? o.privacy.clientEpsilon, delta: o.privacy.delta } }
          : {}),
        ...(dp ? { record: { ledgerPath: join(outDir, 'clients', `${c.name}-record-ledger.jsonl`), epsilon: dp.epsilon ?? 1e9, delta: dp.delta ?? o.privacy?.delta ?? 1e-5, unit: { unit: dp.privacyUnit ?? 'document' } } } : {}),
      },
      // One operator plays every party here: the institutions accept the simulated coordinator's mode (a real institution's policy defaults to distributed).
      ...(o.privacy ? { privacyPolicy: { minMode: o.privacy.mode === 'distributed' ? ('distributed' as const) : ('central' as const) } } : {}),
      trainer: ({ record }) => {
        // --workers: the same training in a worker process, the rest of the node (guards, ledger, SecAgg+ noise) here.
        if (!dp && pool) return pool.trainer({ name: c.name, index: clients.indexOf(c), numExamples: c.train.length, seed: `${o.seed}:${c.name}`, onStep });
        if (!dp) return new ModelTrainer({ model, lora, train: c.train, seed: `${o.seed}:${c.name}`, onStep });
        const t = new DpSgdTrainer({
          model,
          lora,
          train: c.units!,
          clipNorm: dp.clipNorm ?? DEFAULT_DP_SGD_CLIP_NORM,
          // Budget first: without a multiplier each client calibrates one that spends its budget over the planned rounds.
          ...(dp.noiseMultiplier !== undefined ? { noiseMultiplier: dp.noiseMultiplier } : { budget: { ...record!.budgetLimit, rounds: o.rounds } }),
          ...(dp.maxSequencesPerUnit !== undefined ? { maxSequencesPerUnit: dp.maxSequencesPerUnit } : {}),
          guard: record,
          rng: cryptoRandomBytes,
          onStep,
          // Local only (never sent): what the per-unit cap left out of each round.
          onTrained: (round, r) => log.info({ event: 'dpsgd.trained', client: c.name, round, ...r }),
          onReused: (round, attempt) => log.info({ event: 'dpsgd.reused', client: c.name, round, attempt }),
        });
        dpSgdTrainers.set(c.name, t);
        return t;
      },
      // Federated evaluation (task qa): the client scores each global adapter on its own held-out questions.
      ...(c.mcq ? { evaluation: { model, sets: { mcq: c.mcq }, loraOf: () => lora } } : {}),
      secure: secure?.client(c.name),
      // What only a simulator can see: each update sent (secure: the aggregation error; plain: LoRA's aggregation error).
      wrapTrainer: (guarded) => {
        const recorded = secure ? secure.recordUpdates(c.name, guarded) : probe!.wrap(c.name, guarded);
        return o.wrapTrainer ? o.wrapTrainer(c.name, recorded) : recorded;
      },
      runner: { pollMs: 2000, heartbeatMs: 1000 },
      logger: log,
    };
  };

  const secureMetrics = (s: RoundSummary, plan: RoundPlan, before: NamedTensors, after: NamedTensors | null) => {
    if (!after || !secure) return { survivors: s.participants };
    const b = flattenInPlanOrder(plan, before);
    const a = flattenInPlanOrder(plan, after);
    const avg = Float64Array.from(a, (v, i) => v - b[i]!);
    const m = secure.measure(s.round, s.participantNames, avg);
    return {
      survivors: s.participants,
      aggregateMaxAbsError: m.aggregateMaxAbsError,
      ...(distributed ? { noiseStd: m.noiseStd, plannedNoiseStd: (plannedNoiseMultiplier(plan) * (plannedPrivacy(plan)?.clipNorm ?? o.privacy!.clipNorm)) / Math.sqrt(minClients * s.participants) } : {}),
    };
  };

  // Without secure aggregation the simulator sees every update: it measures plain LoRA's aggregation error.
  const probe = secure ? undefined : createAggregationProbe({ uniform: !!o.privacy });
  const rounds: SimulationRound[] = [];
  let initialEvalLoss = Number.NaN;
  let previous: NamedTensors | undefined;
  const evalOf = (round: number) => rounds.filter((r) => r.round === round && r.status === 'completed').at(-1)?.evalLoss;
  const dash = o.dashboard ? simulationDashboard(o.dashboard, { ledgers, evalLoss: evalOf }) : undefined;
  // The coordinator's composition root, as `fedlora coordinator` builds one (its dashboard included).
  const app = await buildCoordinator({
    federationId: `simulation-${o.seed}`,
    listen: '127.0.0.1:0',
    model,
    lora,
    rounds: o.rounds,
    minClients,
    minAvailableClients: o.clients + (o.silentClients ?? 0),
    ...(o.clientsPerRound !== undefined ? { clientsPerRound: o.clientsPerRound, sampling: o.sampling ?? 'uniform' } : {}),
    roundDeadlineMs: o.roundDeadlineMs,
    waitAfterMinimumMs: o.waitAfterMinimumMs,
    localSteps: o.localSteps,
    learningRate: o.learningRate,
    batchSize: o.batchSize,
    strategy: o.strategy,
    seed: o.seed,
    initialAdapter,
    aggregation: fedPrivacy?.aggregation,
    secureAggregation: secure?.coordinator,
    // The LoRA config (with its variant) travels in the plan, as a configured coordinator sends it.
    planParts: () => ({ ...(fedPrivacy?.planExtra() ?? {}), training: { lora, ...(o.strategy.name === 'fedprox' ? { proximalMu: o.proximalMu ?? 0.01 } : {}) } }),
    logger: log,
    ...(dash ? { onRefused: (r: RefusalInfo) => dash.refused(r), dashboard: dash.spec } : {}),
    onRoundEnd: async (s, adapter, plan) => {
      const recorded = fedPrivacy ? await fedPrivacy.recordRound(s, plan, new Date(s.endedAt).toISOString()) : undefined;
      o.onRoundAdapters?.(s.round, previous!, adapter);
      const r: SimulationRound = {
        round: s.round,
        attempt: s.attempt,
        status: s.status,
        participants: s.participants,
        dropped: s.dropped,
        trainLoss: s.trainLoss,
        evalLoss: adapter ? await evalLoss(adapter) : null,
        durationMs: Math.round(s.endedAt - s.startedAt),
        ...(recorded ? { epsilon: recorded.epsilon, clipNorm: plannedPrivacy(plan)?.clipNorm } : {}),
        ...(recordGuards.size ? { recordEpsilon: Math.max(...[...recordGuards.values()].map((g) => g.spent())) } : {}),
        ...(secure ? secureMetrics(s, plan, previous!, adapter) : {}),
        ...(probe && adapter ? optional('aggregationError', probe.measure(s.round, s.participantNames)) : {}),
        ...(s.declined.length ? { declined: s.declined } : {}),
        ...(s.evaluation ? { evaluation: s.evaluation } : {}),
        ...(plan.sampling ? { sampling: plan.sampling } : {}),
      };
      if (adapter) previous = adapter;
      rounds.push(r);
      o.onProgress?.({ kind: 'round', summary: r });
    },
  });
  const stopClients = new AbortController();
  let pool: TrainingWorkerPool | undefined;
  try {
    pool = await startSimulationWorkers(o, { modelDir, backend: backend.name, lora, recordChars: SIMULATED_RECORD_CHARS, logger: log });
    if (app.dashboard) o.dashboard?.onListening?.(app.dashboard.url);
    previous = app.coordinator.adapter;
    initialEvalLoss = await evalLoss(previous);
    const address = `127.0.0.1:${app.port}`;
    const nodes: BuiltClient[] = [];
    for (const c of clients) nodes.push(await buildClient(nodeSpec(c, address)));
    for (const [i, n] of nodes.entries()) {
      if (n.guards.institution) guards.set(clients[i]!.name, n.guards.institution);
      if (n.guards.record) recordGuards.set(clients[i]!.name, n.guards.record);
    }
    // Ledger paths: the federation's first, then each client's institution-level ledgers, then the record-level ones.
    ledgers.push(...[...guards.values(), ...recordGuards.values()].map((g) => g.ledgerPath));
    const silent = Array.from({ length: o.silentClients ?? 0 }, (_, i) => {
      const conn = new GrpcConnection({ address });
      return conn.register(`silent-${i + 1}`, 1).then(() => conn);
    });
    const silentConns = await Promise.all(silent);
    // If the federation fails (e.g. every client refuses a round on its budget), stop the clients too.
    app.done.catch(() => stopClients.abort());
    const runs = nodes.map((n) => n.run(stopClients.signal));
    const [history] = await Promise.all([app.done, ...runs]);
    for (const s of silentConns) s.close();
    const last = [...history].reverse().find((h) => h.status === 'completed');
    return {
      backend: backend.name,
      model: modelDir,
      clients: clients.map((c) => {
        const cal = dpSgdTrainers.get(c.name)?.calibration(calibrationPlan(o, lora));
        return { name: c.name, era: c.era, ...('chars' in c && typeof c.chars === 'number' ? { chars: c.chars } : {}), trainSequences: c.train.length, heldOutSequences: c.heldOut.length, ...(c.units ? { trainUnits: c.units.units.length } : {}), ...(cal ? { dpSgdCalibration: cal } : {}) };
      }),
      ...(o.task === 'qa' ? { task: 'qa' as const, evalLossOf: 'held-out Moby-Dick chapters (general text: forgetting)' } : {}),
      initialEvalLoss,
      rounds,
      ...(o.task === 'qa' && last ? { finalEvaluation: await finalMcq(model, lora, app.coordinator.adapter, clients.flatMap((c) => c.mcq ?? [])) } : {}),
      finalEvalLoss: rounds.filter((r) => r.evalLoss !== null).at(-1)?.evalLoss ?? null,
      finalAdapterSha256: last?.adapterSha256 ?? null,
      loraVariant: lora.variant!,
      adapterParameters: numElements(initialAdapter),
      updateParameters,
      durationMs: Math.round(performance.now() - started),
      ...(o.privacy ? { privacy: o.privacy, ledgers, trustedKeys: trustedKeysPath } : {}),
      ...(o.dpSgd ? { dpSgd: o.dpSgd, ledgers, trustedKeys: trustedKeysPath } : {}),
      ...(pool ? { workers: { count: pool.pids.length, peakRssBytes: pool.peakRssBytes() } } : {}),
    };
  } finally {
    stopClients.abort();
    await pool?.close();
    await app.stopServing();
    model.dispose();
    await dash?.finish(app.dashboard);
    await app.close();
  }
}

/** `{key: value}` when value is defined, else `{}`. */
function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/** The part of a round plan a DP-SGD calibration depends on (batch of units, local steps, the LoRA variant: the dimension). */
function calibrationPlan(o: SimulationOptions, lora: LoraConfig): RoundPlan {
  return { round: 1, attempt: 0, adapterSha256: '', tensors: [], localSteps: o.localSteps, learningRate: o.learningRate, batchSize: o.batchSize, deadlineUnixMs: 0, nonce: '', training: { lora } };
}

/** The noise multiplier applied to the update sum in this round (z_Delta with adaptive clipping). */
function plannedNoiseMultiplier(plan: RoundPlan): number {
  const p = plannedPrivacy(plan);
  if (!p) throw new RangeError(`round ${plan.round}: the plan carries no privacy parameters`);
  return p.noiseMultiplier;
}

/** Task qa: each client's QA examples (masked sequences) and held-out questions; the general text is held-out Moby-Dick. */
function qaClients(model: CausalLM, o: SimulationOptions) {
  const general = tokenizeToSequences(model, mobyDickSplit().heldOut, o.seqLen);
  return sotuQa(o.clients, { seed: o.seed }).map((c, i) => {
    const examples = c.train.map((r) => instructSegments(model.tokenizer, r, 'prompt-completion'));
    const train = instructTrainingSequences(model.tokenizer, examples, model.config.maxPositions).sequences;
    const heldOut = general.slice(i * o.evalSequences, (i + 1) * o.evalSequences);
    return { name: c.name, era: c.era, train, units: undefined as UnitData | undefined, heldOut, mcq: c.heldOut as McqItem[] | undefined };
  });
}

/** Task qa: the final adapter's multiple-choice accuracy over every client's held-out questions. */
async function finalMcq(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, items: McqItem[]) {
  const r = await evaluateMcq(model, items, { lora, adapter });
  return { count: r.examples, acc: r.acc, accNorm: r.acc_norm };
}

/**
 * Budget first, central mode: the noise multiplier calibrated before the model was loaded did not
 * know the update's dimension, which the ledger needs to account the grid (sqrt(d) h of extra
 * sensitivity, central-grid.ts); recalibrate for it so the ledger's epsilon stays <= the target.
 */
function recalibratedForDimension(o: SimulationOptions, dimension: number): SimulationOptions {
  const p = o.privacy;
  const c = p?.calibration;
  if (!p || !c || p.mode !== 'central') return o;
  const calibration = calibrateDpFedAvg({
    targetEpsilon: c.targetEpsilon,
    delta: c.delta,
    institutions: c.units,
    rounds: c.steps,
    config: { mode: 'central', clipNorm: p.clipNorm, samplingRate: c.samplingRate, secureAggregation: !!o.secagg },
    dimension,
  });
  return { ...o, privacy: { ...p, noiseMultiplier: calibration.noiseMultiplier, calibration } };
}
