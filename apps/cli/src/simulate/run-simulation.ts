import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CausalLM, LoraConfig } from '@fedlora/model';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel, validateLoraConfig } from '@fedlora/model';
import type { ClientPrivacyGuard, NoiseCalibration } from '@fedlora/privacy';
import { TRUSTED_KEYS_FILE, generateLedgerKey, writeTrustedKeys } from '@fedlora/privacy';
import type { RoundPlan, RoundSummary } from '@fedlora/federation';
import { flattenInPlanOrder, plannedPrivacy, silentLogger, updateDimension, updateLayout } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { cryptoRandomBytes, numElements, seededRandomBytes } from '@fedlora/tensor';
import { evaluate, evaluateMcq, type McqItem } from '@fedlora/train';
import { GrpcConnection, createSharedChannel } from '@fedlora/transport-grpc';
import type { RefusalInfo } from '@fedlora/coordinator';
import { buildCoordinator, distributedNoiseStddevPerClient } from '@fedlora/coordinator';
import type { DpSgdTrainer } from '@fedlora/client';
import { ReleasedUpdate, buildClient } from '@fedlora/client';
import { generateIdentity } from '@fedlora/secagg';
import { createSecureSimulation, secureMinClientsCap } from './secure-setup.js';
import { PopulationKeys } from './key-store.js';
import { createAggregationProbe } from './aggregation-error.js';
import { simulationDashboard } from './simulation-dashboard.js';
import { qaLoraTargets } from './sotu-qa.js';
import { populationData } from './client-data.js';
import type { TrainerContext } from './node-spec.js';
import { TrainingSlots, clientLedgerPaths, inProcessTrainer, nodeSpec } from './node-spec.js';
import { runPopulation } from './virtual-population.js';
import { startMemorySampler } from './memory-sampler.js';
import { calibrationPlan, checkSimulationPrivacy, plannedNoiseMultiplier, recalibratedForDimension, simulationFederationPrivacy } from './simulation-privacy.js';
import type { SimulationOptions, SimulationReport, SimulationRound } from './simulation-types.js';
import type { TrainingWorkerPool } from './workers.js';
import { startSimulationWorkers } from './workers-sim.js';
import { SIMULATED_RECORD_CHARS } from './client-data.js';

export type { SimulationOptions, SimulationPrivacy, SimulationDpSgd, ProgressEvent, SimulationRound, SimulationReport } from './simulation-types.js';
export { SIMULATED_RECORD_CHARS } from './client-data.js';

/**
 * Runs a whole federation on this machine: a real coordinator with its gRPC server on
 * 127.0.0.1 and a population of institutions dialling it, each with its share of the State of
 * the Union addresses and a held-out part of it. Only each round's cohort is materialised
 * (virtual-population.ts); every institution shares one read-only base model and holds only its
 * LoRA state while it trains. Reports, per round, the participants, the mean train loss and the
 * held-out eval loss of the new global adapter.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  let o = options;
  const started = performance.now();
  const memory = startMemorySampler(250);
  checkSimulationPrivacy(o);
  const backend = await initBackend({ backend: o.backend });
  const modelDir = o.modelDir ?? (process.env.FEDLORA_MODEL_DIR || DEFAULT_BASE_MODEL_DIR);
  const model: CausalLM = await loadModel(modelDir);
  const lora: LoraConfig = { ...defaultLoraConfig(model), ...(o.task === 'qa' ? { targetModules: qaLoraTargets(model.config.modelType) } : {}), ...o.lora, variant: o.loraVariant ?? o.lora?.variant ?? 'lora' };
  validateLoraConfig(lora);
  const log = o.logger ?? silentLogger;

  const data = populationData(model, o);
  const names = data.sizes.map((c) => c.name);
  o.onProgress?.({ kind: 'ready', backend: backend.name, clients: data.sizes.map((c) => ({ name: c.name, era: c.era, trainSequences: c.trainSequences })) });
  const evalLoss = async (adapter: NamedTensors) => (await evaluate(model, lora, adapter, data.evalSet, { batchSize: 8 })).loss;

  const initialAdapter = initLoraAdapter(model, lora, seededRandomBytes(`lora-init:${o.seed}`));
  const updateParameters = updateDimension(updateLayout(initialAdapter, lora.variant!));
  o = recalibratedForDimension(o, updateParameters);
  // The expected cohort: everyone, or clientsPerRound (a count or a fraction of the population).
  const cohortSize = o.clientsPerRound === undefined ? o.clients : Math.min(o.clients, o.clientsPerRound < 1 ? Math.ceil(o.clientsPerRound * o.clients) : Math.floor(o.clientsPerRound));
  const usualMinimum =
    o.secagg && o.secagg.dropout > 0 ? Math.max(2, Math.ceil(cohortSize / 2)) : o.sampling === 'poisson' && o.clientsPerRound !== undefined ? Math.max(1, Math.ceil(cohortSize / 2)) : cohortSize;
  // SecAgg+ at scale: no default minimum above t + 1, which would turn the sparse graph into a near-complete one.
  const minClients = o.minClients ?? (o.secagg ? Math.min(usualMinimum, secureMinClientsCap(cohortSize, o.secagg.dropout)) : usualMinimum);
  if (minClients > cohortSize) throw new RangeError(`simulate: --min-clients ${minClients} exceeds the cohort of ${cohortSize} per round: lower --min-clients or raise --clients-per-round`);
  // What the clients' budget guards see in the plan: amplification by sampling only for a Poisson draw
  // in central mode (the ledger records the draw and why: accountedSampling in @fedlora/privacy).
  const plannedSamplingRate = o.privacy?.mode !== 'distributed' && o.sampling === 'poisson' && cohortSize < o.clients ? cohortSize / o.clients : 1;
  const distributed = o.privacy?.mode === 'distributed';
  const noiseStddevPerClient = distributed ? distributedNoiseStddevPerClient(o.privacy!.noiseMultiplier, o.privacy!.clipNorm, minClients) : 0;
  // Distributed adaptive clipping: every secure round is sized for the clip norm the federation privacy holds at that moment.
  const perRound = distributed && o.privacy?.adaptiveClipping ? () => fedPrivacy!.perRound!() : undefined;
  const outDir = o.privacy || o.dpSgd ? (o.outDir ?? (await mkdtemp(join(tmpdir(), 'fedlora-sim-')))) : '';
  // The population's private keys live on disk (key-store.ts: a 0600 file of 32-byte seeds per purpose), under
  // the out dir with the ledgers they sign, else in a private temporary directory removed at the end.
  const keyDir = outDir ? join(outDir, 'keys') : o.secagg ? await mkdtemp(join(tmpdir(), 'fedlora-sim-keys-')) : '';
  const secure = o.secagg ? createSecureSimulation(names, { ...o.secagg, seed: o.seed, keyDir, cohort: cohortSize, noiseStddevPerClient, ...(perRound ? { perRound } : {}) }) : undefined;
  // One ledger key per institution, shared by its institution-level and record-level ledgers (the audit requires it),
  // in tweetnacl's Ed25519 layout (seed || public key) as generateLedgerKey makes them.
  const ledgerKeys = outDir ? PopulationKeys.create(keyDir, 'ledger', names.length, cryptoRandomBytes) : undefined;
  // Without ledgers (no DP) a key is made only for an institution that is materialised.
  const unrecordedKeys = new Map<string, Uint8Array>();
  // The public half of every ledger key, for the auditor (this one operator holds them all here).
  const trustedKeysPath = join(outDir, TRUSTED_KEYS_FILE);
  const coordinatorLedgerKey = generateLedgerKey();
  if (ledgerKeys) writeTrustedKeys(trustedKeysPath, { coordinator: coordinatorLedgerKey.publicKey, ...Object.fromEntries(names.map((name, i) => [name, Buffer.from(ledgerKeys.publicKey(i)).toString('hex')])) });
  const fedPrivacy = await simulationFederationPrivacy(o, { outDir, dimension: updateParameters, minClients, samplingRate: plannedSamplingRate, signerSecretKey: coordinatorLedgerKey.secretKey });

  // What survives a node being dropped: the record-level epsilon spent, DP-SGD's calibration, who ever took part (has ledgers).
  const recordSpent = new Map<string, number>();
  const dpSgdCalibrations = new Map<string, NoiseCalibration>();
  const dpSgdTrainers = new Map<string, DpSgdTrainer>();
  // Record-level guards of the nodes materialised now (their spend so far), and each institution's update kept for a
  // retry of the open round: a node is rebuilt for every attempt, the kept update must outlive it (released-update.ts).
  const liveRecordGuards = new Map<string, ClientPrivacyGuard>();
  const released = new Map<string, ReleasedUpdate>();
  const releasedOf = (name: string) => released.get(name) ?? released.set(name, new ReleasedUpdate()).get(name)!;
  const tookPart = new Set<number>();

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
  const ledgers: string[] = fedPrivacy ? [fedPrivacy.ledgerPath] : [];
  const evalOf = (round: number) => rounds.filter((r) => r.round === round && r.status === 'completed').at(-1)?.evalLoss;
  // The dashboard charts every ledger while the run goes on: an institution's appear once it is first materialised.
  const liveLedgers: string[] = [...ledgers];
  const dash = o.dashboard ? simulationDashboard(o.dashboard, { ledgers: liveLedgers, evalLoss: evalOf }) : undefined;
  // The coordinator's composition root, as `fedlora coordinator` builds one (its dashboard included).
  const app = await buildCoordinator({
    federationId: `simulation-${o.seed}`,
    listen: '127.0.0.1:0',
    model,
    lora,
    rounds: o.rounds,
    minClients,
    minAvailableClients: o.clients + (o.silentClients ?? 0),
    // Idle institutions only check in (virtual-population.ts): each stays eligible for a round deadline after its last check-in.
    livenessMs: Math.max(60_000, o.roundDeadlineMs),
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
      // A completed round is never retried: the updates kept for its retries go (zeroed).
      if (s.status === 'completed') {
        for (const r of released.values()) r.forget();
        released.clear();
      }
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
        ...recordEpsilonOf(recordSpent, liveRecordGuards),
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
  const address = `127.0.0.1:${app.port}`;
  const channel = createSharedChannel({ address });
  let pool: TrainingWorkerPool | undefined;
  try {
    pool = await startSimulationWorkers(o, { modelDir, backend: backend.name, lora, recordChars: SIMULATED_RECORD_CHARS, logger: log });
    if (app.dashboard) o.dashboard?.onListening?.(app.dashboard.url);
    previous = app.coordinator.adapter;
    initialEvalLoss = await evalLoss(previous);
    const env = { o, model, lora, address, channel, outDir, cohort: cohortSize, slots: new TrainingSlots(o.trainingSlots ?? availableParallelism()), ledgerKeyOf: (n: string, i: number) => ledgerKeys?.secretKey(i) ?? unrecordedKeys.get(n) ?? unrecordedKeys.set(n, generateIdentity(cryptoRandomBytes).secretKey).get(n)!, ...(secure ? { secure } : {}), ...(probe ? { probe } : {}), logger: log };
    const inProcess = inProcessTrainer(env, (n, t) => dpSgdTrainers.set(n, t), releasedOf);
    // --workers: the same training in a worker process, the rest of the node (guards, ledger, SecAgg+ noise) here.
    const workers = pool;
    const trainerFactory =
      o.trainerFactory ??
      (workers && !o.dpSgd ? (ctx: TrainerContext) => workers.trainer({ name: ctx.name, index: ctx.index, numExamples: ctx.sizes.trainSequences, seed: ctx.seed, onStep: ctx.onStep }) : inProcess);
    const silent = Array.from({ length: o.silentClients ?? 0 }, (_, i) => {
      const conn = new GrpcConnection({ address, channel });
      return conn.register(`silent-${i + 1}`, 1).then(() => conn);
    });
    await Promise.all(silent);
    // If the federation fails (e.g. every client refuses a round on its budget), stop the clients too.
    app.done.catch(() => stopClients.abort());
    const population = runPopulation({
      address,
      channel,
      names,
      numExamplesOf: (i) => data.sizes[i]!.trainSequences,
      // 60 s, or 0.2 s per member of the cohort (a cohort's stage work shares this process's event loop).
      callTimeoutMs: Math.max(60_000, 200 * cohortSize),
      materialise: async (i, session) => {
        const node = await buildClient(nodeSpec({ ...env, trainerFactory }, i, session, data.sizes[i]!, data.build, o.onProgress));
        if (!tookPart.has(i)) {
          // Its ledgers exist once its guards are open (buildClient).
          const paths = clientLedgerPaths(outDir, names[i]!);
          if (o.privacy) liveLedgers.push(paths.institution);
          if (o.dpSgd) liveLedgers.push(paths.record);
        }
        tookPart.add(i);
        if (node.guards.record) liveRecordGuards.set(names[i]!, node.guards.record);
        return node;
      },
      onDropped: (i, node) => {
        const name = names[i]!;
        if (node.guards.record) recordSpent.set(name, node.guards.record.spent());
        liveRecordGuards.delete(name);
        const cal = dpSgdTrainers.get(name)?.calibration(calibrationPlan(o, lora));
        if (cal) dpSgdCalibrations.set(name, cal);
        dpSgdTrainers.delete(name);
      },
      ...(o.checkInConcurrency !== undefined ? { concurrency: o.checkInConcurrency } : {}),
      signal: stopClients.signal,
      logger: log,
    });
    const [history, seen] = await Promise.all([app.done, population]);
    const last = [...history].reverse().find((h) => h.status === 'completed');
    // Ledger paths: the federation's first, then the institution-level ledgers of every institution that took part, then the record-level ones.
    const took = [...tookPart].sort((a, b) => a - b).map((i) => clientLedgerPaths(outDir, names[i]!));
    if (o.privacy) ledgers.push(...took.map((p) => p.institution));
    if (o.dpSgd) ledgers.push(...took.map((p) => p.record));
    const secondsPerRound = rounds.map((r) => r.durationMs / 1000);
    return {
      backend: backend.name,
      model: modelDir,
      clients: data.sizes.map((c) => ({ ...c, ...(dpSgdCalibrations.has(c.name) ? { dpSgdCalibration: dpSgdCalibrations.get(c.name)! } : {}) })),
      ...(o.task === 'qa' ? { task: 'qa' as const, evalLossOf: 'held-out Moby-Dick chapters (general text: forgetting)' } : {}),
      initialEvalLoss,
      rounds,
      ...(o.task === 'qa' && last ? { finalEvaluation: await finalMcq(model, lora, app.coordinator.adapter, data.mcq) } : {}),
      finalEvalLoss: rounds.filter((r) => r.evalLoss !== null).at(-1)?.evalLoss ?? null,
      finalAdapterSha256: last?.adapterSha256 ?? null,
      loraVariant: lora.variant!,
      adapterParameters: numElements(initialAdapter),
      updateParameters,
      durationMs: Math.round(performance.now() - started),
      population: { size: names.length, cohort: cohortSize, peakMaterialised: seen.peakMaterialised, materialisations: seen.materialisations },
      secondsPerRound,
      memory: memory.peak(),
      ...(pool ? { workers: { count: pool.pids.length, peakRssBytes: pool.peakRssBytes() } } : {}),
      ...(o.privacy ? { privacy: o.privacy, ledgers, trustedKeys: trustedKeysPath } : {}),
      ...(o.dpSgd ? { dpSgd: o.dpSgd, ledgers, trustedKeys: trustedKeysPath } : {}),
    };
  } finally {
    stopClients.abort();
    memory.stop();
    await pool?.close();
    await app.stopServing();
    channel.close();
    model.dispose();
    await dash?.finish(app.dashboard);
    await app.close();
    ledgerKeys?.close();
    secure?.close();
    if (keyDir && !outDir) await rm(keyDir, { recursive: true, force: true });
  }
}

/** `{key: value}` when value is defined, else `{}`. */
function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/** Task qa: the final adapter's multiple-choice accuracy over every client's held-out questions. */
async function finalMcq(model: CausalLM, lora: LoraConfig, adapter: NamedTensors, items: McqItem[]) {
  const r = await evaluateMcq(model, items, { lora, adapter });
  return { count: r.examples, acc: r.acc, accNorm: r.acc_norm };
}

/** The largest record-level epsilon spent so far over the institutions (dropped nodes' last spend, live nodes' guards). */
function recordEpsilonOf(spent: ReadonlyMap<string, number>, live: ReadonlyMap<string, ClientPrivacyGuard>): { recordEpsilon?: number } {
  const all = [...spent.values(), ...[...live.values()].map((g) => g.spent())];
  return all.length ? { recordEpsilon: Math.max(...all) } : {};
}
