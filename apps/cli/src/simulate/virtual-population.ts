/**
 * A simulated population of institutions that are identities plus data partitions, not live
 * processes (as in cross-device FL, Bonawitz et al. 2019, "Towards Federated Learning at Scale",
 * where devices check in and most are told to come back later).
 *
 * Each institution registers once and then only checks in from time to time, in batches (one
 * CheckIn call answers many institutions' sessions, each by its own token) over one gRPC channel
 * shared by the whole population; the coordinator's liveness
 * window covers the check-in period. An institution told to train is materialised: its node is
 * built (budgets reopened from disk, data tokenized, trainer on the shared base model), runs the
 * round with every client-side check of a real node (plan and roster checks, budget guards,
 * SecAgg+), and is dropped as soon as the coordinator has nothing more for it.
 */
import type { BuiltClient } from '@fedlora/client';
import type { CheckInAnswer, CoordinatorConnection, EventLogger } from '@fedlora/federation';
import { MAX_CHECK_IN_BATCH, systemClock } from '@fedlora/federation';
import type * as grpc from '@grpc/grpc-js';
import { GrpcConnection } from '@fedlora/transport-grpc';

/** How a population is driven. */
export interface PopulationOptions {
  address: string;
  channel: grpc.Channel;
  /** Institution names, in partition order. */
  names: readonly string[];
  /** The example count each claims at registration (its training sequences). */
  numExamplesOf: (index: number) => number;
  /** Builds the node of institution `index` for the round it was drawn into, on the session the population holds for it. */
  materialise: (index: number, session: CoordinatorConnection) => Promise<BuiltClient>;
  /** Called when a materialised node is dropped (collect what it spent, say). */
  onDropped?: (index: number, node: BuiltClient, result: { roundsTrained: number[]; stopped?: string }) => void;
  /**
   * Deadline of each call of the population's sessions (default 60 s). A whole cohort in one
   * process shares one event loop: when a stage opens, a cohort of 1,000 parses its key lists and
   * agrees keys at once, and calls queued behind that burst passed 60 s and cost their
   * institutions the round (they reconnect and lose their SecAgg+ state). Simulations scale it.
   */
  callTimeoutMs?: number;
  /** Registrations in flight at once (default 16). */
  concurrency?: number;
  /** Institutions per check-in call (default 256, at most MAX_CHECK_IN_BATCH). */
  checkInBatch?: number;
  /**
   * Check-ins per second over the whole population (default 500): a sweep over n idle
   * institutions takes at least n / rate seconds, so idle institutions cost the coordinator (and
   * the trainers sharing this process) a bounded rate of cheap calls, whatever the population.
   */
  checkInsPerSecond?: number;
  signal: AbortSignal;
  logger: EventLogger;
}

/** What a population run saw. */
export interface PopulationResult {
  /** Most nodes materialised at the same time. */
  peakMaterialised: number;
  /** Nodes built over the run (one per institution per round it took part in). */
  materialisations: number;
  /** Institutions that stopped themselves (for example: budget exhausted), with why. */
  stopped: Map<string, string>;
}

type State = 'idle' | 'materialised' | 'done';

/**
 * Runs the population until the coordinator has told every institution that the run finished
 * (or `signal` aborts). Rejects when a materialised node fails, as a real client would exit.
 */
export async function runPopulation(o: PopulationOptions): Promise<PopulationResult> {
  const n = o.names.length;
  // One session per institution on the shared channel: a token, not a connection.
  const sessions = o.names.map(() => new GrpcConnection({ address: o.address, channel: o.channel, callTimeoutMs: o.callTimeoutMs ?? 60_000 }));
  const state: State[] = new Array<State>(n).fill('idle');
  const stopped = new Map<string, string>();
  const running = new Set<Promise<void>>();
  let failure: unknown;
  let materialised = 0;
  let peakMaterialised = 0;
  let materialisations = 0;
  let sweep = 0;
  let fastThrough = -1;
  let lastNonce = '';
  // Sessions per CheckIn call: an answer is a few bytes per session (a drawn one hears its attempt, not the plan).
  const batchSize = Math.min(o.checkInBatch ?? 256, MAX_CHECK_IN_BATCH);

  const register = (i: number) => sessions[i]!.register(o.names[i]!, o.numExamplesOf(i));
  await forEachLimited(n, o.concurrency ?? 16, o.signal, register);

  const materialise = (i: number) => {
    state[i] = 'materialised';
    materialisations++;
    peakMaterialised = Math.max(peakMaterialised, ++materialised);
    const p = (async () => {
      const node = await o.materialise(i, sessions[i]!);
      const result = await node.run(o.signal);
      o.onDropped?.(i, node, result);
      if (result.stopped) {
        stopped.set(o.names[i]!, result.stopped);
        state[i] = 'done';
      } else state[i] = 'idle';
    })()
      .catch((err: unknown) => {
        if (!o.signal.aborted) failure ??= err;
        state[i] = 'done';
      })
      .finally(() => {
        materialised--;
        running.delete(p);
      });
    running.add(p);
  };

  /** Institution `i` is drawn into the round attempt `nonce`: materialise it (its node asks GetTask for the plan). */
  const drawn = (i: number, nonce: string) => {
    // A new round attempt opened: find the rest of its cohort at full speed (this sweep and the next).
    if (nonce !== lastNonce) {
      lastNonce = nonce;
      fastThrough = sweep + 1;
    }
    materialise(i);
  };

  /** Checks in the idle institutions among `batch` with one call (GrpcConnection.checkIn). */
  const checkIn = async (batch: number[]) => {
    const idle = batch.filter((i) => state[i] === 'idle');
    if (idle.length === 0) return;
    let answers: CheckInAnswer[];
    try {
      answers = await GrpcConnection.checkIn(idle.map((i) => sessions[i]!));
    } catch (err) {
      if (!o.signal.aborted) o.logger.warn({ event: 'population.check-in-failed', clients: idle.length, reason: (err as Error).message });
      return;
    }
    for (const [k, a] of answers.entries()) {
      const i = idle[k]!;
      if (state[i] !== 'idle') continue;
      if ('drawn' in a) drawn(i, a.drawn.nonce);
      else if ('task' in a) {
        if (a.task.kind === 'finished') state[i] = 'done';
      } else if (o.signal.aborted) return;
      // The coordinator forgot this session (it restarted): register again.
      else if (a.refused === 'unauthenticated') await register(i).catch((err: unknown) => o.logger.warn({ event: 'population.register-failed', client: o.names[i], reason: (err as Error).message }));
      else o.logger.warn({ event: 'population.check-in-refused', client: o.names[i], reason: a.reason });
    }
  };

  // One call checks in a batch of institutions; batches are spread evenly over a sweep (no
  // bursts that would starve the rounds' own calls), except right after a round opened, when its
  // cohort must arrive before the first stage closes. The coordinator thus serves n / batch calls
  // per sweep, not n: what idle institutions cost it does not grow with the population.
  const intervalMs = 1000 / (o.checkInsPerSecond ?? 500);
  for (sweep = 0; !o.signal.aborted && failure === undefined && state.some((s) => s !== 'done'); sweep++) {
    const started = performance.now();
    for (let first = 0; first < n && !o.signal.aborted; first += batchSize) {
      const wait = sweep <= fastThrough ? 0 : started + first * intervalMs - performance.now();
      if (wait > 1) await systemClock.sleep(wait, o.signal).catch(() => {});
      await checkIn(Array.from({ length: Math.min(batchSize, n - first) }, (_, k) => first + k));
    }
    await systemClock.sleep(50, o.signal).catch(() => {});
  }
  await Promise.allSettled([...running]);
  if (failure !== undefined && !o.signal.aborted) throw failure;
  return { peakMaterialised, materialisations, stopped };
}

/** Calls `fn(i)` for i in [0, n) with at most `limit` calls in flight; stops starting new ones when `signal` aborts. */
async function forEachLimited(n: number, limit: number, signal: AbortSignal, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n && !signal.aborted) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
}
