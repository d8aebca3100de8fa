import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { cryptoRandomBytes, sha256Named } from '@fedlora/tensor';
import type { Clock, EventLogger } from './clock.js';
import { silentLogger, systemClock } from './clock.js';
import type { CohortSampling, SamplingMode } from './cohort-sampling.js';
import { drawCohort } from './cohort-sampling.js';
import { FederationError } from './errors.js';
import { Notifier } from './notifier.js';
import type { RoundAggregation, RoundAggregationFactory } from './round-aggregation.js';
import { weightedFedAvg } from './round-aggregation.js';
import { combineEvaluations } from './round-evaluation.js';
import type { ServerStrategy } from './strategy.js';
import type { ClientRecord, ClientUpdate, RoundPlan, RoundSummary, Task } from './types.js';
import { validateUpdate } from './validate-update.js';
import { fullDelta, loraVariantOf, updateLayout, updateTensors } from './lora-variant.js';
import type { SecureAggregationOptions } from './secure-round.js';
import { SecureRound } from './secure-round.js';

/** Everything the coordinator needs; the apps build this from the YAML config. */
export interface CoordinatorOptions {
  federationId: string;
  rounds: number;
  /** A round completes only if at least this many clients reported. */
  minClients: number;
  /** A round starts only when this many clients are connected (Flower's min_available_clients); default minClients. */
  minAvailableClients?: number;
  /** Cohort size per round: a count (>= 1) or a fraction (0, 1) of the live clients; all when unset. */
  clientsPerRound?: number;
  /** How the cohort is drawn when `clientsPerRound` is set (default uniform); recorded in `RoundPlan.sampling`. */
  sampling?: SamplingMode;
  roundDeadlineMs: number;
  /** Once minClients have reported, wait at most this long for the rest of the cohort. */
  waitAfterMinimumMs?: number;
  /** A round that aborts is retried; after this many attempts of one round the run fails. */
  maxAttemptsPerRound?: number;
  /** A client not heard from for this long is not selected for new rounds. */
  livenessMs?: number;
  localSteps: number;
  learningRate: number;
  batchSize: number;
  strategy: ServerStrategy;
  initialAdapter: NamedTensors;
  /** Resume after this many committed rounds (from the store). */
  startAfterRound?: number;
  /** Round attempts that ended before a restart (from the store): they start the history `status` reports. */
  previousRounds?: RoundSummary[];
  /**
   * After a restart: the clients of the last committed round. The first round of this process
   * waits up to `graceMs` for all of them to register again (their reconnect backoff may outlast
   * the restart), so nobody who was in the federation misses the first round after it; and a run
   * that finishes waits (in `drain`) for each of them to learn that it finished.
   */
  rejoin?: { clients: readonly string[]; graceMs: number };
  aggregation?: RoundAggregationFactory;
  /** Secure aggregation (SecAgg+): the coordinator sees only the sum of the cohort's encoded updates. */
  secureAggregation?: SecureAggregationOptions;
  /** Extra plan parameters (privacy, secagg, fedprox mu) for a round. */
  planExtra?: (round: number) => Record<string, unknown>;
  /** Called when a round opens, before any client sees it (persistence: the round is recorded first). */
  onRoundStart?: (plan: RoundPlan, cohort: string[]) => void;
  /** Awaited after each round ends, before the next starts (persistence, ledger). */
  onRoundEnd?: (summary: RoundSummary, adapter: NamedTensors | null, plan: RoundPlan) => Promise<void> | void;
  clock?: Clock;
  logger?: EventLogger;
  rng?: RandomBytes;
}

interface OpenRound {
  plan: RoundPlan;
  cohort: Set<string>;
  reported: Map<string, { numExamples: number; trainLoss: number; metrics?: Record<string, number> }>;
  declined: Map<string, string>;
  aggregation: RoundAggregation;
  closed: boolean;
  startedAt: number;
  minReachedAt?: number;
  secure?: SecureRound;
}

type RunState = 'waiting-for-clients' | 'training' | 'finished' | 'failed' | 'stopped';

/**
 * The federation's round loop, independent of any transport: the gRPC adapter (or an
 * in-process test) calls register/getTask/getAdapter/submitUpdate/decline/heartbeat.
 */
export class FederationCoordinator {
  private readonly clients = new Map<string, ClientRecord & { token: string }>();
  /** Last heartbeat or protocol message per client: proof of work on the open round (polls do not count). */
  private readonly lastActive = new Map<string, number>();
  private global: NamedTensors;
  private current: OpenRound | null = null;
  private state: RunState = 'waiting-for-clients';
  private readonly changed = new Notifier();
  private readonly history: RoundSummary[] = [];
  private readonly clock: Clock;
  private readonly log: EventLogger;
  private readonly rng: RandomBytes;
  private readonly stopController = new AbortController();
  private completedRounds: number;
  private readonly toldFinished = new Set<string>();
  /** Clients of the last committed round before a restart that the first round still waits for (once). */
  private pendingRejoin: { clients: readonly string[]; graceMs: number } | undefined;
  /** Why the run failed (told to clients that ask for a task afterwards). */
  private failure: string | undefined;
  /** Outcome of the last secure round, so clients still polling it learn how it ended. */
  private lastSecure: { round: number; nonce: string; survivors: Set<string> | null } | undefined;

  constructor(private readonly opts: CoordinatorOptions) {
    if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new RangeError(`rounds must be an integer >= 1, received ${opts.rounds}`);
    if (!Number.isInteger(opts.minClients) || opts.minClients < 1) throw new RangeError(`minClients must be an integer >= 1, received ${opts.minClients}`);
    this.global = opts.initialAdapter;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.rng = opts.rng ?? cryptoRandomBytes;
    this.completedRounds = opts.startAfterRound ?? 0;
    this.history.push(...(opts.previousRounds ?? []));
    this.pendingRejoin = opts.rejoin && opts.rejoin.clients.length > 0 ? opts.rejoin : undefined;
  }

  /** Registers (or re-registers after a reconnect) a client; returns its session token. */
  register(name: string, numExamples: number): { clientId: string; sessionToken: string } {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      throw new FederationError('invalid-argument', `client name must be 1-64 characters of [A-Za-z0-9._-], received ${JSON.stringify(name.slice(0, 80))}`);
    }
    const token = Buffer.from(this.rng(24)).toString('base64url');
    const now = this.clock.now();
    const existing = this.clients.get(name);
    this.clients.set(name, { clientId: name, name, numExamples, registeredAt: existing?.registeredAt ?? now, lastSeen: now, token });
    this.log.info({ event: existing ? 'client.rejoined' : 'client.joined', client: name });
    this.changed.notify();
    return { clientId: name, sessionToken: token };
  }

  /** Checks a client's session token; refreshes its liveness. */
  authenticate(clientId: string, token: string): ClientRecord {
    const c = this.clients.get(clientId);
    if (!c || c.token !== token) throw new FederationError('unauthenticated', 'unknown client or expired session: register again');
    c.lastSeen = this.clock.now();
    return c;
  }

  /** Long-poll: what should this client do now? Waits up to `waitMs` for something to change. */
  async getTask(clientId: string, token: string, waitMs = 0): Promise<Task> {
    this.authenticate(clientId, token);
    const until = this.clock.now() + Math.min(Math.max(waitMs, 0), 60_000);
    for (;;) {
      const task = this.taskFor(clientId);
      if (task.kind !== 'wait' || this.clock.now() >= until) return task;
      await this.changed.wait(until - this.clock.now(), this.stopController.signal);
      if (this.stopController.signal.aborted) return { kind: 'wait', retryAfterMs: 1000 };
    }
  }

  private taskFor(clientId: string): Task {
    if (this.state === 'finished' || this.state === 'failed') {
      this.toldFinished.add(clientId);
      this.changed.notify();
      return this.state === 'failed' ? { kind: 'finished', failed: this.failure ?? 'the run failed' } : { kind: 'finished' };
    }
    const r = this.current;
    if (r && !r.closed && r.cohort.has(clientId) && !r.reported.has(clientId) && !r.declined.has(clientId)) {
      return { kind: 'train', plan: r.plan };
    }
    return { kind: 'wait', retryAfterMs: 500 };
  }

  /** The global adapter of the open round, for a client of its cohort. */
  getAdapter(clientId: string, token: string, round: number): { adapter: NamedTensors; sha256: string } {
    this.authenticate(clientId, token);
    const r = this.requireOpenRound(round);
    if (!r.cohort.has(clientId)) throw new FederationError('permission-denied', `client ${clientId} is not in the cohort of round ${round}`);
    return { adapter: this.global, sha256: r.plan.adapterSha256 };
  }

  /** Accepts a complete update for the open round (validated, then added whole). */
  submitUpdate(clientId: string, token: string, update: ClientUpdate): void {
    this.authenticate(clientId, token);
    if (update.header.clientId !== clientId) throw new FederationError('invalid-argument', 'update header names another client');
    const r = this.requireOpenRound(update.header.round);
    if (!r.cohort.has(clientId)) throw new FederationError('permission-denied', `client ${clientId} is not in the cohort of round ${r.plan.round}`);
    if (r.secure) throw new FederationError('failed-precondition', `round ${r.plan.round} uses secure aggregation: send the update through SecAggExchange`);
    if (r.reported.has(clientId)) throw new FederationError('already-exists', `client ${clientId} already reported for round ${r.plan.round}`);
    validateUpdate(r.plan, update.header, update.delta);
    r.aggregation.add(clientId, update);
    r.reported.set(clientId, { numExamples: update.header.numExamples, trainLoss: update.header.trainLoss, metrics: update.header.metrics });
    if (r.reported.size >= this.opts.minClients && r.minReachedAt === undefined) r.minReachedAt = this.clock.now();
    this.log.info({ event: 'update.received', round: r.plan.round, client: clientId, numExamples: update.header.numExamples });
    this.changed.notify();
  }

  /**
   * One secure-aggregation exchange for the open round (see SecureRound.exchange). `report`
   * carries the client's training metrics once, with its first masked-input message.
   */
  secAggExchange(
    clientId: string,
    token: string,
    round: number,
    nonce: string,
    stage: string,
    payload: Uint8Array,
    report?: { numExamples: number; trainLoss: number },
  ): { kind: string; stage: string; payload: Uint8Array } {
    this.authenticate(clientId, token);
    const last = this.lastSecure;
    if (last && last.round === round && last.nonce === nonce && (!this.current || this.current.closed || this.current.plan.nonce !== nonce)) {
      return { kind: last.survivors?.has(clientId) ? 'finished' : 'aborted', stage: '', payload: new Uint8Array(0) };
    }
    const r = this.requireOpenRound(round);
    if (!r.secure) throw new FederationError('failed-precondition', `round ${round} does not use secure aggregation`);
    if (nonce !== r.plan.nonce) throw new FederationError('failed-precondition', `secure-aggregation message for an earlier attempt of round ${round}`);
    if (!r.cohort.has(clientId)) throw new FederationError('permission-denied', `client ${clientId} is not in the cohort of round ${round}`);
    this.lastActive.set(clientId, this.clock.now());
    const reply = r.secure.exchange(clientId, stage, payload);
    if (report && !r.reported.has(clientId) && Number.isFinite(report.trainLoss) && report.numExamples >= 1) {
      r.reported.set(clientId, { numExamples: Math.floor(report.numExamples), trainLoss: report.trainLoss });
    }
    this.changed.notify();
    return reply;
  }

  /** A client declines the open round (for example: its privacy budget would be exceeded). */
  decline(clientId: string, token: string, round: number, reason: string): void {
    this.authenticate(clientId, token);
    const r = this.requireOpenRound(round);
    if (!r.cohort.has(clientId) || r.reported.has(clientId)) return;
    r.declined.set(clientId, reason.slice(0, 200));
    this.log.info({ event: 'client.declined', round, client: clientId, reason: reason.slice(0, 200) });
    this.changed.notify();
  }

  /** Liveness signal while training; says whether the round is still open. */
  heartbeat(clientId: string, token: string, round: number): { roundOpen: boolean } {
    this.authenticate(clientId, token);
    this.lastActive.set(clientId, this.clock.now());
    const r = this.current;
    return { roundOpen: !!r && !r.closed && r.plan.round === round };
  }

  /** The plan of the open round `round`; throws failed-precondition if it is not open. */
  openPlan(round: number): RoundPlan {
    return this.requireOpenRound(round).plan;
  }

  private requireOpenRound(round: number): OpenRound {
    const r = this.current;
    if (!r || r.plan.round !== round) {
      throw new FederationError('failed-precondition', `round ${round} is not open${r ? ` (round ${r.plan.round} is)` : ''}`);
    }
    if (r.closed) throw new FederationError('failed-precondition', `round ${round} is closed: late results are discarded`);
    return r;
  }

  /** Operator view. */
  status() {
    const now = this.clock.now();
    return {
      federationId: this.opts.federationId,
      state: this.state,
      currentRound: this.current?.plan.round ?? this.completedRounds,
      completedRounds: this.completedRounds,
      totalRounds: this.opts.rounds,
      connectedClients: [...this.clients.values()].filter((c) => now - c.lastSeen <= this.liveness).length,
      rounds: [...this.history],
    };
  }

  /** The round in progress (for dashboards): its stage and how many of its cohort have answered. */
  openRound(): { round: number; attempt: number; stage: string; cohort: number; reported: number; declined: number; deadlineUnixMs: number; startedAt: number } | null {
    const r = this.current;
    if (!r || r.closed) return null;
    return {
      round: r.plan.round,
      attempt: r.plan.attempt,
      stage: r.secure ? `secagg ${r.secure.stage}` : 'collecting updates',
      cohort: r.cohort.size,
      reported: r.reported.size,
      declined: r.declined.size,
      deadlineUnixMs: r.plan.deadlineUnixMs,
      startedAt: r.startedAt,
    };
  }

  /** The current global adapter. */
  get adapter(): NamedTensors {
    return this.global;
  }

  /** Every round attempt so far. */
  get rounds(): readonly RoundSummary[] {
    return this.history;
  }

  private get liveness(): number {
    return this.opts.livenessMs ?? 60_000;
  }

  /**
   * After the run finished: waits until every live client has been told so (they then exit 0),
   * or `timeoutMs` passes, so a coordinator that exits when done does not strand its clients.
   */
  async drain(timeoutMs: number): Promise<void> {
    const until = this.clock.now() + timeoutMs;
    const expected = () => new Set([...this.liveClients(), ...(this.opts.rejoin?.clients ?? [])]);
    while (this.clock.now() < until && [...expected()].some((c) => !this.toldFinished.has(c))) {
      await this.changed.wait(Math.min(500, until - this.clock.now()));
    }
  }

  /** Stops the loop (shutdown); pending long-polls return. */
  stop(): void {
    if (this.state !== 'finished' && this.state !== 'failed') this.state = 'stopped';
    this.stopController.abort();
    this.changed.notify();
  }

  /** Runs rounds until the configured number is committed. Resolves with the history. */
  async run(): Promise<RoundSummary[]> {
    const maxAttempts = this.opts.maxAttemptsPerRound ?? 3;
    while (this.completedRounds < this.opts.rounds) {
      const round = this.completedRounds + 1;
      let done = false;
      for (let attempt = 1; attempt <= maxAttempts && !done; attempt++) {
        if (this.stopController.signal.aborted) return this.history;
        await this.waitForClients();
        if (this.stopController.signal.aborted) return this.history;
        done = await this.runRound(round, attempt);
      }
      if (!done) {
        const last = this.history.at(-1);
        this.failure = `round ${round} aborted ${maxAttempts} times${last?.reason ? ` (last: ${last.reason})` : ''}`;
        this.state = 'failed';
        this.log.error({ event: 'federation.failed', round, reason: `round ${round} aborted ${maxAttempts} times` });
        this.changed.notify();
        throw new FederationError('unavailable', `round ${round} aborted ${maxAttempts} times; see the round history for reasons`);
      }
    }
    this.state = 'finished';
    this.log.info({ event: 'federation.finished', rounds: this.completedRounds });
    this.changed.notify();
    return this.history;
  }

  private liveClients(): string[] {
    const now = this.clock.now();
    return [...this.clients.values()].filter((c) => now - c.lastSeen <= this.liveness).map((c) => c.clientId).sort();
  }

  private async waitForClients(): Promise<void> {
    this.state = 'waiting-for-clients';
    const needed = Math.max(this.opts.minClients, this.opts.minAvailableClients ?? 0);
    while (this.liveClients().length < needed && !this.stopController.signal.aborted) {
      await this.changed.wait(1000, this.stopController.signal);
    }
    const rejoin = this.pendingRejoin;
    if (!rejoin) return;
    this.pendingRejoin = undefined;
    const until = this.clock.now() + rejoin.graceMs;
    const missing = () => rejoin.clients.filter((c) => !this.liveClients().includes(c));
    while (missing().length > 0 && this.clock.now() < until && !this.stopController.signal.aborted) {
      await this.changed.wait(Math.min(1000, until - this.clock.now()), this.stopController.signal);
    }
    const absent = missing();
    if (absent.length > 0) this.log.warn({ event: 'federation.rejoin-incomplete', missing: absent, graceMs: rejoin.graceMs });
    else this.log.info({ event: 'federation.rejoined', clients: rejoin.clients.length });
  }

  private selectCohort(): { cohort: string[]; sampling: CohortSampling } {
    return drawCohort(this.liveClients(), this.opts.clientsPerRound, this.opts.sampling ?? 'uniform', this.rng, this.opts.minClients);
  }

  private async runRound(round: number, attempt: number): Promise<boolean> {
    const { cohort, sampling } = this.selectCohort();
    const startedAt = this.clock.now();
    const extra = this.opts.planExtra?.(round) ?? {};
    const layout = [...this.global].map(([name, t]) => ({ name, shape: [...t.shape] }));
    let secure: SecureRound | undefined;
    if (this.opts.secureAggregation) {
      try {
        // The secure sum covers what an update carries: every tensor for plain LoRA, only the B matrices for FFA-LoRA.
        secure = new SecureRound(round, cohort, updateLayout(this.global, loraVariantOf(extra, round)), this.opts.secureAggregation, startedAt + this.opts.roundDeadlineMs, startedAt);
      } catch (err) {
        this.log.warn({ event: 'round.aborted', round, attempt, reason: (err as Error).message });
        const summary: RoundSummary = {
          round, attempt, status: 'aborted', participants: 0, participantNames: [], cohort: cohort.length, dropped: [], declined: [], trainLoss: null,
          numExamples: 0, adapterSha256: null, reason: `secure aggregation could not start: ${(err as Error).message}`, startedAt, endedAt: this.clock.now(), metrics: {},
        };
        await this.opts.onRoundEnd?.(summary, null, { round, attempt, adapterSha256: '', tensors: layout, localSteps: 0, learningRate: 0, batchSize: 0, deadlineUnixMs: 0, nonce: '', extra: {} });
        this.history.push(summary);
        await this.changed.wait(1000, this.stopController.signal);
        return false;
      }
    }
    const plan: RoundPlan = {
      round,
      attempt,
      adapterSha256: sha256Named(this.global),
      tensors: layout,
      localSteps: this.opts.localSteps,
      learningRate: this.opts.learningRate,
      batchSize: this.opts.batchSize,
      deadlineUnixMs: startedAt + this.opts.roundDeadlineMs,
      nonce: Buffer.from(this.rng(16)).toString('hex'),
      extra: { ...extra, ...(secure ? { secagg: secure.plan } : {}) },
      sampling,
    };
    this.opts.onRoundStart?.(plan, cohort);
    const r: OpenRound = {
      plan,
      cohort: new Set(cohort),
      reported: new Map(),
      declined: new Map(),
      aggregation: (this.opts.aggregation ?? weightedFedAvg)(plan),
      closed: false,
      startedAt,
      secure,
    };
    this.current = r;
    this.state = 'training';
    this.log.info({ event: 'round.started', round, attempt, cohort: cohort.length });
    this.changed.notify();

    await this.waitForReports(r);
    r.closed = true;
    let secureOutcome: { survivors: string[]; delta: NamedTensors; centredCount?: number } | undefined;
    let secureFailure: string | undefined;
    if (r.secure) {
      if (r.secure.stage !== 'finished') {
        const why =
          r.declined.size >= r.cohort.size
            ? `every client declined the round (${[...new Set(r.declined.values())].join('; ')})`
            : this.clock.now() >= r.plan.deadlineUnixMs
              ? 'round deadline passed before secure aggregation finished'
              : 'the coordinator is stopping';
        const protocolError = r.secure.abortReason;
        r.secure.abort(why);
        secureFailure = protocolError ?? why;
      } else {
        secureOutcome = r.secure.result(updateTensors(plan));
      }
      // Only the survivors' updates are in the sum: metrics of clients that dropped later do not count.
      for (const c of [...r.reported.keys()]) if (!secureOutcome?.survivors.includes(c)) r.reported.delete(c);
      for (const c of secureOutcome?.survivors ?? []) if (!r.reported.has(c)) r.reported.set(c, { numExamples: 1, trainLoss: Number.NaN });
      this.lastSecure = { round, nonce: plan.nonce, survivors: secureOutcome ? new Set(secureOutcome.survivors) : null };
    }
    const dropped = cohort.filter((c) => !r.reported.has(c) && !r.declined.has(c));
    for (const c of dropped) this.log.warn({ event: 'client.dropped', round, client: c, reason: 'no update before the deadline' });

    const participants = r.reported.size;
    const numExamples = [...r.reported.values()].reduce((a, b) => a + b.numExamples, 0);
    const losses = [...r.reported.values()].filter((v) => Number.isFinite(v.trainLoss));
    const lossWeight = losses.reduce((a, b) => a + b.numExamples, 0);
    const trainLoss = lossWeight ? losses.reduce((a, b) => a + b.trainLoss * b.numExamples, 0) / lossWeight : null;
    // Federated evaluation of the global adapter this round started from (round-evaluation.ts).
    const evaluation = combineEvaluations([...r.reported.values()].map((v) => v.metrics));
    const base = { round, attempt, participants, participantNames: [...r.reported.keys()].sort(), cohort: cohort.length, dropped, declined: [...r.declined.keys()], trainLoss, numExamples, startedAt, ...(evaluation ? { evaluation } : {}) };
    let summary: RoundSummary;
    let newAdapter: NamedTensors | null = null;
    if (secureFailure || participants < this.opts.minClients) {
      const reason = secureFailure ?? `${participants} of ${cohort.length} clients reported, minClients is ${this.opts.minClients}`;
      summary = { ...base, status: 'aborted', adapterSha256: null, reason, endedAt: this.clock.now(), metrics: {} };
      this.log.warn({ event: 'round.aborted', round, attempt, reason });
    } else {
      try {
        const { delta, metrics } = secureOutcome
          ? r.aggregation.finalizeSecure
            ? (({ delta: d, metrics: m }) => ({ delta: d, metrics: { ...m, secure: 1 } }))(r.aggregation.finalizeSecure(secureOutcome.delta, participants, { centredCount: secureOutcome.centredCount }))
            : { delta: secureOutcome.delta, metrics: { aggregated: participants, secure: 1 } }
          : r.aggregation.finalize();
        newAdapter = this.opts.strategy.apply(this.global, fullDelta(this.global, delta));
        // Tensors the round did not carry (FFA-LoRA's frozen A) stay bit for bit what every client trained with.
        for (const [name, t] of this.global) if (!delta.has(name)) newAdapter.set(name, t);
        summary = { ...base, status: 'completed', adapterSha256: sha256Named(newAdapter), endedAt: this.clock.now(), metrics };
      } catch (err) {
        const reason = `aggregation failed: ${err instanceof Error ? err.message : String(err)}`;
        summary = { ...base, status: 'aborted', adapterSha256: null, reason, endedAt: this.clock.now(), metrics: {} };
        newAdapter = null;
        this.log.error({ event: 'round.aborted', round, attempt, reason });
      }
    }
    await this.opts.onRoundEnd?.(summary, newAdapter, plan);
    this.history.push(summary);
    if (newAdapter) {
      this.global = newAdapter;
      this.completedRounds = round;
      this.log.info({ event: 'round.completed', round, attempt, participants, trainLoss, adapterSha256: summary.adapterSha256, ...(summary.evaluation ? { evaluation: summary.evaluation } : {}) });
    }
    this.current = null;
    this.changed.notify();
    return newAdapter !== null;
  }

  private async waitForReports(r: OpenRound): Promise<void> {
    if (r.secure) {
      for (;;) {
        const now = this.clock.now();
        const lastSeen = (name: string) => this.lastActive.get(name) ?? 0;
        if (r.secure.tick(now, lastSeen) || now >= r.plan.deadlineUnixMs || this.stopController.signal.aborted) return;
        if (r.declined.size >= r.cohort.size) return;
        await this.changed.wait(Math.max(1, Math.min(r.secure.nextDeadline() - now, r.plan.deadlineUnixMs - now, 1000)), this.stopController.signal);
      }
    }
    const waitAfterMin = this.opts.waitAfterMinimumMs ?? Number.POSITIVE_INFINITY;
    for (;;) {
      const now = this.clock.now();
      const settled = r.reported.size + r.declined.size;
      if (settled >= r.cohort.size) return;
      if (now >= r.plan.deadlineUnixMs) return;
      if (r.minReachedAt !== undefined && now - r.minReachedAt >= waitAfterMin) return;
      if (this.stopController.signal.aborted) return;
      const nextWake = Math.min(r.plan.deadlineUnixMs, r.minReachedAt !== undefined ? r.minReachedAt + waitAfterMin : Infinity);
      await this.changed.wait(Math.max(1, Math.min(nextWake - now, 1000)), this.stopController.signal);
    }
  }
}
