/**
 * One simulated institution's node, as `fedlora client` builds one (build-client.ts): its budgets
 * (on disk: one signed ledger per institution, reopened each time it is materialised), its
 * trainer stack and its client loop. Built only for the round the institution is drawn into.
 */
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { CoordinatorConnection, EventLogger, LocalTrainer } from '@fedlora/federation';
import { cryptoRandomBytes } from '@fedlora/tensor';
import type { ClientSpec, OpenedGuards } from '@fedlora/client';
import { DEFAULT_DP_SGD_CLIP_NORM, DpSgdTrainer, ModelTrainer, type ReleasedUpdate } from '@fedlora/client';
import type { ClientData, ClientSizes } from './client-data.js';
import type { ProgressEvent, SimulationOptions } from './simulation-types.js';
import type { createSecureSimulation } from './secure-setup.js';
import type { createAggregationProbe } from './aggregation-error.js';

/** What a trainer is built from: the institution, its data (tokenized on first call), its guards. */
export interface TrainerContext {
  name: string;
  /** Index of its partition in the population (a worker can rebuild the data from it). */
  index: number;
  sizes: ClientSizes;
  /** Tokenizes the institution's partition (once; dropped with the node after the round). */
  data: () => ClientData;
  /** Seed of its batch order. */
  seed: string;
  guards: OpenedGuards;
  onStep: (round: number, s: { step: number; loss: number; tokensPerSecond: number }) => void;
}

/**
 * Builds a materialised institution's local trainer: the one place where training is chosen, so
 * it can run elsewhere (worker processes) behind the LocalTrainer interface.
 */
export type TrainerFactory = (ctx: TrainerContext) => LocalTrainer;

/** The shared parts every node is built with. */
export interface NodeEnvironment {
  o: SimulationOptions;
  model: CausalLM;
  lora: LoraConfig;
  address: string;
  /** The one gRPC channel every institution of the population shares. */
  channel: grpc.Channel;
  outDir: string;
  /** Institution `index`'s ledger key (read from the population's key file when it has ledgers). */
  ledgerKeyOf: (name: string, index: number) => Uint8Array;
  secure?: ReturnType<typeof createSecureSimulation>;
  probe?: ReturnType<typeof createAggregationProbe>;
  trainerFactory: TrainerFactory;
  /** Trainings that may run at once across the population (their tensors and activations are live only then). */
  slots: TrainingSlots;
  /** Expected cohort per round (paces each node's heartbeats: the whole cohort shares this process). */
  cohort: number;
  logger: EventLogger;
}

/**
 * A counting semaphore over local trainings. A cohort of a thousand is told to train at once;
 * in one process only so many can make progress, and each one running holds its activations and
 * optimizer state, so the rest wait their turn (their attempt's liveness timer keeps heartbeating).
 */
export class TrainingSlots {
  private free: number;
  private readonly queue: Array<() => void> = [];

  constructor(slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`training slots must be an integer >= 1, received ${slots}`);
    this.free = slots;
  }

  /** Runs `fn` when a slot is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.free++;
    }
  }

  /** `trainer` whose training waits for a slot. */
  wrap(trainer: LocalTrainer): LocalTrainer {
    return {
      get numExamples() {
        return trainer.numExamples;
      },
      ...(trainer.accept ? { accept: trainer.accept.bind(trainer) } : {}),
      train: (plan, global, progress) => this.run(() => trainer.train(plan, global, progress)),
    };
  }
}

/** Paths of an institution's ledgers under the simulation's output directory. */
export function clientLedgerPaths(outDir: string, name: string): { institution: string; record: string } {
  return { institution: join(outDir, 'clients', `${name}-ledger.jsonl`), record: join(outDir, 'clients', `${name}-record-ledger.jsonl`) };
}

/** The default trainer: in this process, on the shared read-only base model; only LoRA state per client. */
export function inProcessTrainer(
  env: Pick<NodeEnvironment, 'o' | 'model' | 'lora' | 'logger'>,
  onDpSgd?: (name: string, t: DpSgdTrainer) => void,
  /** The update an institution keeps for a retry of its round, outliving the node (released-update.ts). */
  releasedOf?: (name: string) => ReleasedUpdate,
): TrainerFactory {
  const { o, model, lora } = env;
  return (ctx) => {
    const dp = o.dpSgd;
    const data = ctx.data();
    if (!dp) return new ModelTrainer({ model, lora, train: data.train, seed: ctx.seed, onStep: ctx.onStep });
    const t = new DpSgdTrainer({
      model,
      lora,
      train: data.units!,
      clipNorm: dp.clipNorm ?? DEFAULT_DP_SGD_CLIP_NORM,
      // Budget first: without a multiplier each client calibrates one that spends its budget over the planned rounds.
      ...(dp.noiseMultiplier !== undefined ? { noiseMultiplier: dp.noiseMultiplier } : { budget: { ...ctx.guards.record!.budgetLimit, rounds: o.rounds } }),
      ...(dp.maxSequencesPerUnit !== undefined ? { maxSequencesPerUnit: dp.maxSequencesPerUnit } : {}),
      guard: ctx.guards.record,
      rng: cryptoRandomBytes,
      onStep: ctx.onStep,
      // Local only (never sent): what the per-unit cap left out of each round.
      onTrained: (round, r) => env.logger.info({ event: 'dpsgd.trained', client: ctx.name, round, ...r }),
      onReused: (round, attempt) => env.logger.info({ event: 'dpsgd.reused', client: ctx.name, round, attempt }),
      ...(releasedOf ? { released: releasedOf(ctx.name) } : {}),
    });
    onDpSgd?.(ctx.name, t);
    return t;
  };
}

/** The spec of institution `index`'s node for the round it was drawn into (it returns when it has nothing left to do). */
export function nodeSpec(
  env: NodeEnvironment,
  index: number,
  session: CoordinatorConnection,
  sizes: ClientSizes,
  build: (index: number) => ClientData,
  onProgress?: (e: ProgressEvent) => void,
): ClientSpec {
  const { o, secure, probe } = env;
  const name = sizes.name;
  const onStep = (round: number, s: { step: number; loss: number; tokensPerSecond: number }) =>
    onProgress?.({ kind: 'step', client: name, round, step: s.step, steps: o.localSteps, loss: s.loss, tokensPerSecond: s.tokensPerSecond });
  const dp = o.dpSgd;
  let data: ClientData | undefined;
  const ledgers = clientLedgerPaths(env.outDir, name);
  return {
    name,
    coordinator: { address: env.address, channel: env.channel, connection: session },
    secretKey: env.ledgerKeyOf(name, index),
    budgets: {
      ...(o.privacy ? { institution: { ledgerPath: ledgers.institution, epsilon: o.privacy.clientEpsilonOverrides?.[name] ?? o.privacy.clientEpsilon, delta: o.privacy.delta } } : {}),
      ...(dp ? { record: { ledgerPath: ledgers.record, epsilon: dp.epsilon ?? 1e9, delta: dp.delta ?? o.privacy?.delta ?? 1e-5, unit: { unit: dp.privacyUnit ?? 'document' } } } : {}),
    },
    // One operator plays every party here: the institutions accept the simulated coordinator's mode (a real institution's policy defaults to distributed).
    ...(o.privacy ? { privacyPolicy: { minMode: o.privacy.mode === 'distributed' ? ('distributed' as const) : ('central' as const) } } : {}),
    trainer: (guards) => env.slots.wrap(env.trainerFactory({ name, index, sizes, data: () => (data ??= build(index)), seed: `${o.seed}:${name}`, guards, onStep })),
    // Federated evaluation (task qa): the client scores each global adapter on its own held-out questions.
    ...(o.task === 'qa' ? { evaluation: { model: env.model, sets: { mcq: (data ??= build(index)).mcq ?? [] }, loraOf: () => env.lora } } : {}),
    secure: secure?.client(name, index),
    // What only a simulator can see: each update sent (secure: the aggregation error; plain: LoRA's aggregation error).
    wrapTrainer: (guarded) => {
      const recorded = secure ? secure.recordUpdates(name, guarded) : probe!.wrap(name, guarded);
      return o.wrapTrainer ? o.wrapTrainer(name, recorded) : recorded;
    },
    // Materialised for one round: no long poll, back to idle as soon as the coordinator has nothing for it.
    // Heartbeats: every second up to a cohort of 100, then 10 ms x cohort (a cohort of 1,000 would otherwise send 1,000 a second).
    runner: { pollMs: 0, heartbeatMs: Math.max(1000, 10 * env.cohort), untilIdle: true },
    logger: env.logger,
  };
}
