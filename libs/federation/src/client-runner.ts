import type { NamedTensors } from '@fedlora/tensor';
import { sha256Named } from '@fedlora/tensor';
import { AttemptLiveness, type TrainingProgress } from './attempt-liveness.js';
import type { Clock, EventLogger } from './clock.js';
import { silentLogger, systemClock } from './clock.js';
import { onAbort } from './abort-waiters.js';
import { yieldToEventLoop } from './attempt-liveness.js';
import { FederationError } from './errors.js';
import type { SecAggExchange, SecureClientOptions } from './secure-client.js';
import { runSecureRound, securePlanRefusal } from './secure-client.js';
import { checkPlanLayout } from './lora-variant.js';
import type { ClientUpdate, RoundPlan, Task } from './types.js';

/** The client's view of the coordinator; implemented over gRPC and in-process. */
export interface CoordinatorConnection {
  register(name: string, numExamples: number): Promise<{ clientId: string }>;
  getTask(waitMs: number): Promise<Task>;
  downloadAdapter(round: number): Promise<NamedTensors>;
  uploadUpdate(update: ClientUpdate): Promise<void>;
  decline(round: number, reason: string): Promise<void>;
  heartbeat(round: number): Promise<{ roundOpen: boolean }>;
  /** One secure-aggregation exchange (see SecAggExchange). */
  secAggExchange: SecAggExchange;
  close(): void;
}

/** What a client contributes: local training on its private data. */
export interface LocalTrainer {
  /** Examples this client trains on (sent at registration and as the FedAvg weight). */
  readonly numExamples: number;
  /**
   * Decides whether to take part (privacy budget); a refusal tells the coordinator only the reason
   * given. A refusal with `stop` also ends this client's participation (for example: its budget
   * cannot pay for any further round); `stop` says why, for the institution's operator.
   */
  accept?(plan: RoundPlan): Promise<{ accept: true } | { accept: false; reason: string; stop?: string; detail?: string }>;
  /**
   * Trains from the global adapter; returns delta = local - global. A trainer that runs many
   * steps awaits `progress` between them: that proves liveness to the coordinator (a heartbeat,
   * throttled) and yields to the event loop, so the connection (and, in a simulation, the
   * coordinator sharing this process) keeps running while training. `progress` throws when the
   * attempt closed at the coordinator or the client is stopping: the trainer lets it propagate.
   */
  train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress): Promise<{ delta: NamedTensors; numExamples: number; trainLoss: number; metrics?: Record<string, number> }>;
}

export type { TrainingProgress } from './attempt-liveness.js';

/** Options of the client loop. */
export interface ClientRunnerOptions {
  name: string;
  connection: CoordinatorConnection;
  trainer: LocalTrainer;
  /** Long-poll duration per GetTask call. */
  pollMs?: number;
  /** Reconnect backoff: initial and maximum delay; gives up after maxRetries consecutive failures. */
  backoffMs?: { initial: number; max: number };
  maxRetries?: number;
  heartbeatMs?: number;
  /** Identity and noise for rounds that use secure aggregation. */
  secure?: SecureClientOptions;
  clock?: Clock;
  logger?: EventLogger;
  signal?: AbortSignal;
  /**
   * Return as soon as the coordinator has nothing for this client (a `wait` task) instead of
   * polling on: a virtual institution of a simulated population or fleet is materialised for the
   * round it was drawn into, handles that task with every check, and is dropped again.
   */
  untilIdle?: boolean;
  /** Called after each round the client trained in (for progress displays). */
  onRoundTrained?: (info: { round: number; trainLoss: number; numExamples: number }) => void;
}

/**
 * The client loop: register, poll for a task, download the global adapter (hash-checked),
 * train, upload the delta; reconnects with exponential backoff when the coordinator is away.
 */
export async function runClient(opts: ClientRunnerOptions): Promise<{ roundsTrained: number[]; stopped?: string }> {
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? silentLogger;
  const backoff = opts.backoffMs ?? { initial: 250, max: 10_000 };
  const maxRetries = opts.maxRetries ?? 30;
  // Every call ends when the client is told to stop, even one waiting on a coordinator that never answers.
  const conn = opts.signal ? abortableConnection(opts.connection, opts.signal) : opts.connection;
  const roundsTrained: number[] = [];
  let registered = false;
  let failures = 0;
  /** Sessions refused since the last task received (a coordinator that restarted refuses one). */
  let refusedSessions = 0;
  let lastAttempt = '';

  while (!opts.signal?.aborted) {
    try {
      if (!registered) {
        await conn.register(opts.name, opts.trainer.numExamples);
        registered = true;
        failures = 0;
        log.info({ event: 'client.registered', client: opts.name });
      }
      const task = await conn.getTask(opts.pollMs ?? 5000);
      failures = 0;
      refusedSessions = 0;
      if (task.kind === 'finished') {
        if (task.failed) {
          const stop = `the federation failed at the coordinator: ${task.failed}`;
          log.error({ event: 'client.stopped', client: opts.name, reason: stop });
          return { roundsTrained, stopped: stop };
        }
        log.info({ event: 'client.finished', client: opts.name, rounds: roundsTrained.length });
        return { roundsTrained };
      }
      if (task.kind === 'wait') {
        if (opts.untilIdle) return { roundsTrained };
        // GetTask already long-polled; a short pause only guards against a server that answers at once.
        await clock.sleep(Math.min(task.retryAfterMs, 50), opts.signal);
        continue;
      }
      const plan = task.plan;
      const key = `${plan.round}:${plan.nonce}`;
      if (key === lastAttempt) {
        await clock.sleep(200, opts.signal);
        continue;
      }
      lastAttempt = key;
      // A secure plan whose roster or parameters this institution does not accept is declined before anything is trained or sent.
      const refused = plan.secagg && opts.secure ? securePlanRefusal(plan, opts.name, opts.secure) : undefined;
      if (refused) {
        log.error({ event: 'round.refused', client: opts.name, round: plan.round, reason: refused });
        await conn.decline(plan.round, `refused the secure-aggregation plan: ${refused}`);
        continue;
      }
      const verdict = (await opts.trainer.accept?.(plan)) ?? { accept: true as const };
      if (!verdict.accept) {
        // `detail` (e.g. the epsilon the round would reach against the budget) stays in the local log; only `reason` is sent.
        log.warn({ event: 'round.declined', client: opts.name, round: plan.round, reason: verdict.reason, ...(verdict.detail ? { detail: verdict.detail } : {}) });
        await conn.decline(plan.round, verdict.reason);
        if (verdict.stop) {
          log.error({ event: 'client.stopped', client: opts.name, round: plan.round, reason: verdict.stop });
          return { roundsTrained, stopped: verdict.stop };
        }
        continue;
      }
      const global = await conn.downloadAdapter(plan.round);
      const got = sha256Named(global);
      if (got !== plan.adapterSha256) {
        throw new FederationError('invalid-argument', `downloaded adapter hash ${got.slice(0, 12)}… does not match the plan's ${plan.adapterSha256.slice(0, 12)}…`);
      }
      // The plan's LoRA variant must be one this client knows, with a frozen A for every B it trains under FFA-LoRA.
      checkPlanLayout(plan, global);
      // Liveness of this attempt, from the first training step to the masked input (attempt-liveness.ts).
      let live: AttemptLiveness | undefined;
      const train = () => {
        live = new AttemptLiveness(conn, plan, opts.heartbeatMs ?? 5000, clock, opts.signal);
        return opts.trainer.train(plan, global, live.progress);
      };
      if (plan.secagg) {
        if (!opts.secure) throw new FederationError('failed-precondition', `round ${plan.round} uses secure aggregation but this client has no identity key configured for it`);
        let trained: { trainLoss: number; numExamples: number } | undefined;
        let end;
        try {
          end = await runSecureRound(
            (round, nonce, stage, payload, report, waitMs) => conn.secAggExchange(round, nonce, stage, payload, report, waitMs),
            plan,
            opts.name,
            async () => {
              const r = await train();
              trained = r;
              return r;
            },
            opts.secure,
            clock,
            opts.signal,
            (step) => (live ? live.progress(step) : yieldToEventLoop()),
          );
        } finally {
          live?.stop();
        }
        log.info({ event: 'secagg.ended', client: opts.name, round: plan.round, end });
        if (end === 'finished' && trained) {
          roundsTrained.push(plan.round);
          opts.onRoundTrained?.({ round: plan.round, trainLoss: trained.trainLoss, numExamples: trained.numExamples });
        }
        continue;
      }
      let result;
      try {
        result = await train();
      } finally {
        live?.stop();
      }
      await conn.uploadUpdate({
        header: {
          clientId: opts.name,
          round: plan.round,
          nonce: plan.nonce,
          numExamples: result.numExamples,
          trainLoss: result.trainLoss,
          tensors: [...result.delta].map(([name, t]) => ({ name, shape: [...t.shape] })),
          metrics: result.metrics ?? {},
        },
        delta: result.delta,
      });
      roundsTrained.push(plan.round);
      opts.onRoundTrained?.({ round: plan.round, trainLoss: result.trainLoss, numExamples: result.numExamples });
      log.info({ event: 'update.sent', client: opts.name, round: plan.round, trainLoss: result.trainLoss });
    } catch (err) {
      if (opts.signal?.aborted) break; // told to stop: whatever was in flight no longer matters
      const code = err instanceof FederationError ? err.code : undefined;
      if (code === 'unauthenticated' && registered) {
        // The coordinator answered but does not know this session (it restarted, or forgot us).
        // It is reachable, so register again at once: no backoff, and the outage's failure count
        // is cleared. A backoff here once kept an institution out of every later round (issue 11).
        registered = false;
        failures = 0;
        refusedSessions++;
        log.warn({ event: 'client.reregistering', client: opts.name, reason: (err as Error).message });
        // Guard against a coordinator that accepts registrations but refuses each new session.
        if (refusedSessions > 3) await clock.sleep(Math.min(backoff.max, backoff.initial * 2 ** (refusedSessions - 4)), opts.signal);
        continue;
      }
      if (code === 'failed-precondition' || code === 'already-exists') {
        log.warn({ event: 'round.missed', client: opts.name, reason: (err as Error).message });
        continue; // the round moved on; ask for the next task
      } else if (code === 'unauthenticated') {
        // Registration itself was refused (for example a clock outside the allowed skew): retry with backoff.
      } else if (code !== 'unavailable' && code !== undefined) {
        throw err;
      } else if (code === undefined && !(err instanceof Error && /ECONNREFUSED|UNAVAILABLE|ECONNRESET/.test(err.message))) {
        throw err;
      }
      failures++;
      if (failures > maxRetries) throw new FederationError('unavailable', `coordinator unreachable after ${maxRetries} attempts: ${(err as Error).message}`);
      const delay = Math.min(backoff.max, backoff.initial * 2 ** (failures - 1));
      log.warn({ event: 'client.reconnecting', client: opts.name, attempt: failures, delayMs: delay });
      await clock.sleep(delay, opts.signal);
    }
  }
  return { roundsTrained };
}

/**
 * The connection with every call raced against `signal`: when the client is told to stop
 * (SIGTERM during a reconnect backoff, or during a call to a coordinator that hangs), the loop
 * returns at once; the caller then closes the connection, which cancels the calls left behind.
 */
function abortableConnection(c: CoordinatorConnection, signal: AbortSignal): CoordinatorConnection {
  const race = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const stopped = () => reject(new FederationError('unavailable', 'the client is stopping'));
      if (signal.aborted) return void (p.catch(() => {}), stopped());
      const unsubscribe = onAbort(signal, stopped);
      p.then(resolve, reject).finally(unsubscribe);
    });
  return {
    register: (name, n) => race(c.register(name, n)),
    getTask: (waitMs) => race(c.getTask(waitMs)),
    downloadAdapter: (round) => race(c.downloadAdapter(round)),
    uploadUpdate: (update) => race(c.uploadUpdate(update)),
    decline: (round, reason) => race(c.decline(round, reason)),
    heartbeat: (round) => race(c.heartbeat(round)),
    secAggExchange: (round, nonce, stage, payload, report, waitMs) => race(c.secAggExchange(round, nonce, stage, payload, report, waitMs)),
    close: () => c.close(),
  };
}

