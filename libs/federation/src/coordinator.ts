import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { cryptoRandomBytes, sha256Named } from '@fedlora/tensor';
import type { Clock, EventLogger } from './clock.js';
import { silentLogger, systemClock } from './clock.js';
import type { CohortSampling, SamplingMode } from './cohort-sampling.js';
import { drawCohort } from './cohort-sampling.js';
import { FederationError } from './errors.js';
import { ClientRegistry } from './client-registry.js';
import { concludeRound } from './round-conclusion.js';
import { Notifier } from './notifier.js';
import type { Stage } from '@fedlora/secagg';
import { PlainRound } from './plain-round.js';
import type { RoundAggregationFactory } from './round-aggregation.js';
import { exampleWeightCap, weightedFedAvg } from './round-aggregation.js';
import type { CloseCause, RoundProtocol, RoundProtocolFactory } from './round-protocol.js';
import { SecureRoundProtocol } from './secure-protocol.js';
import type { SecureAggregationOptions } from './secure-round.js';
import type { ServerStrategy } from './strategy.js';
import type { CheckInAnswer, ClientRecord, ClientReport, ClientUpdate, PlanParts, RoundPlan, RoundSummary, SecAggReply, Task } from './types.js';

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
  /**
   * Whether a client is still a member (enrolled, not revoked), asked at every call and every
   * cohort draw: a revoked institution leaves the live set at once instead of after `livenessMs`,
   * and its session is refused. Default: every registered client is a member.
   */
  isMember?: (clientName: string) => boolean;
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
  /** The configured parts of a round's plan (training, privacy); secure aggregation adds its own. */
  planParts?: (round: number) => PlanParts;
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
  declined: Map<string, string>;
  protocol: RoundProtocol;
  closed: boolean;
  startedAt: number;
}

type RunState = 'waiting-for-clients' | 'training' | 'finished' | 'failed' | 'stopped';

/**
 * The federation's round loop, independent of any transport: the gRPC adapter (or an
 * in-process test) calls register/getTask/getAdapter/submitUpdate/decline/heartbeat.
 */
export class FederationCoordinator {
  /** Registered institutions and the live set (client-registry.ts). */
  private readonly registry: ClientRegistry;
  /** Last heartbeat or protocol message per client: proof of work on the open round (polls do not count). */
  private readonly lastActive = new Map<string, number>();
  /** The attempt (plan nonce) each client was last handed to train: a heartbeat for any other attempt hears that its round closed. */
  private readonly issued = new Map<string, string>();
  private global: NamedTensors;
  private current: OpenRound | null = null;
  private state: RunState = 'waiting-for-clients';
  private readonly changed = new Notifier();
  /** Wakes long-polling secure-aggregation clients: fires when a round's protocol stage changes or the round ends. */
  private readonly stageChanged = new Notifier();
  private readonly history: RoundSummary[] = [];
  private readonly clock: Clock;
  private readonly log: EventLogger;
  private readonly rng: RandomBytes;
  private readonly stopController = new AbortController();
  private completedRounds: number;
  private readonly toldFinished = new Set<string>();
  /** Clients caught misbehaving in an attempt of the round being run: left out of its reruns. */
  private readonly excludedFromRerun = new Map<string, string>();
  /** Clients of the last committed round before a restart that the first round still waits for (once). */
  private pendingRejoin: { clients: readonly string[]; graceMs: number } | undefined;
  /** Why the run failed (told to clients that ask for a task afterwards). */
  private failure: string | undefined;
  /** The last round that ended, so clients still polling its protocol learn how it ended. */
  private previous: OpenRound | undefined;
  /** Opens each round's protocol: secure aggregation or plain updates, chosen once from the options. */
  private readonly openProtocol: RoundProtocolFactory;

  constructor(private readonly opts: CoordinatorOptions) {
    if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new RangeError(`rounds must be an integer >= 1, received ${opts.rounds}`);
    if (!Number.isInteger(opts.minClients) || opts.minClients < 1) throw new RangeError(`minClients must be an integer >= 1, received ${opts.minClients}`);
    this.global = opts.initialAdapter;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.rng = opts.rng ?? cryptoRandomBytes;
    const secureIdentity = opts.secureAggregation?.identityOf;
    this.registry = new ClientRegistry({ livenessMs: opts.livenessMs, isMember: opts.isMember, ...(secureIdentity ? { identityOf: secureIdentity } : {}), clock: this.clock, logger: this.log, rng: this.rng });
    this.completedRounds = opts.startAfterRound ?? 0;
    this.history.push(...(opts.previousRounds ?? []));
    this.pendingRejoin = opts.rejoin && opts.rejoin.clients.length > 0 ? opts.rejoin : undefined;
    const secure = opts.secureAggregation;
    // Never unmask a sum of fewer than minClients inputs (#16 finding 8): the secure protocol
    // aborts at collection instead of unmasking a sum the round would then discard.
    const secureOpts = secure && { ...secure, minSurvivors: Math.max(secure.minSurvivors ?? 1, opts.minClients) };
    this.openProtocol = secureOpts
      ? (start) => new SecureRoundProtocol(start, secureOpts)
      : (start) => new PlainRound(start, { minClients: opts.minClients, waitAfterMinimumMs: opts.waitAfterMinimumMs, clock: this.clock });
  }

  /** Registers (or re-registers after a reconnect) a client; returns its session token. */
  register(name: string, numExamples: number): { clientId: string; sessionToken: string } {
    const r = this.registry.register(name, numExamples);
    this.log.info({ event: r.rejoined ? 'client.rejoined' : 'client.joined', client: name });
    this.changed.notify();
    return { clientId: r.clientId, sessionToken: r.sessionToken };
  }

  /** Checks a client's session token; refreshes its liveness. */
  authenticate(clientId: string, token: string): ClientRecord {
    return this.registry.authenticate(clientId, token);
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

  /**
   * Many sessions check in at once, without waiting (one call from a process that holds many
   * institutions, such as a simulated population): each is authenticated by its own token and
   * answered as `getTask(id, token, 0)` would answer it, except that a session drawn into the open
   * round hears only the attempt (round and nonce), not the plan: it asks GetTask for the plan,
   * so an answer stays a few bytes per session whatever the cohort's roster weighs. A batch
   * carries no authority that its sessions' separate calls would not. At most MAX_CHECK_IN_BATCH
   * sessions per call.
   */
  checkIn(sessions: ReadonlyArray<{ clientId: string; token: string }>): CheckInAnswer[] {
    if (sessions.length > MAX_CHECK_IN_BATCH) throw new FederationError('invalid-argument', `a check-in carries at most ${MAX_CHECK_IN_BATCH} sessions, received ${sessions.length}`);
    return sessions.map(({ clientId, token }) => {
      try {
        this.authenticate(clientId, token);
        const r = this.roundToTrain(clientId);
        return r ? { drawn: { round: r.plan.round, nonce: r.plan.nonce } } : { task: this.idleTask(clientId) };
      } catch (err) {
        if (err instanceof FederationError) return { refused: err.code, reason: err.message };
        throw err;
      }
    });
  }

  /** The open round `clientId` is to train in now (in its cohort, not reported, not declined), if any. */
  private roundToTrain(clientId: string): OpenRound | undefined {
    if (this.state === 'finished' || this.state === 'failed') return undefined;
    const r = this.current;
    return r && !r.closed && r.cohort.has(clientId) && !r.protocol.hasReported(clientId) && !r.declined.has(clientId) ? r : undefined;
  }

  private taskFor(clientId: string): Task {
    const r = this.roundToTrain(clientId);
    if (!r) return this.idleTask(clientId);
    this.issued.set(clientId, r.plan.nonce);
    return { kind: 'train', plan: r.plan };
  }

  /** The task of a client with nothing to train: the run is over, or wait. */
  private idleTask(clientId: string): Exclude<Task, { kind: 'train' }> {
    if (this.state === 'finished' || this.state === 'failed') {
      this.toldFinished.add(clientId);
      this.changed.notify();
      return this.state === 'failed' ? { kind: 'finished', failed: this.failure ?? 'the run failed' } : { kind: 'finished' };
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
    r.protocol.acceptUpdate(clientId, update);
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
    stage: Stage | '',
    payload: Uint8Array,
    report?: ClientReport,
  ): SecAggReply {
    this.authenticate(clientId, token);
    // A round that ended still answers its cohort's polls with how it ended.
    const ended = [this.current, this.previous].find((x) => x && x.closed && x.plan.round === round && x.plan.nonce === nonce && x.cohort.has(clientId));
    if (ended) return ended.protocol.exchange(clientId, '', new Uint8Array(0));
    const r = this.requireOpenRound(round);
    if (nonce !== r.plan.nonce) throw new FederationError('failed-precondition', `secure-aggregation message for an earlier attempt of round ${round}`);
    if (!r.cohort.has(clientId)) throw new FederationError('permission-denied', `client ${clientId} is not in the cohort of round ${round}`);
    this.lastActive.set(clientId, this.clock.now());
    const reply = r.protocol.exchange(clientId, stage, payload, report);
    this.changed.notify();
    return reply;
  }

  /**
   * A secure-aggregation poll held, while the answer is 'wait', until the protocol's stage changes
   * or the round ends, or `waitMs` passed (capped at 30 s): one call per stage per client instead
   * of one per poll interval, which is what a cohort of a thousand in one simulation costs.
   */
  async secAggPoll(clientId: string, token: string, round: number, nonce: string, waitMs: number): Promise<SecAggReply> {
    const reply = this.secAggExchange(clientId, token, round, nonce, '', new Uint8Array(0));
    if (reply.kind !== 'wait' || waitMs <= 0 || this.stopController.signal.aborted) return reply;
    // One wait, then the answer as it stands: after a stage change that is this client's next message.
    await this.stageChanged.wait(Math.min(waitMs, 30_000), this.stopController.signal);
    return this.secAggExchange(clientId, token, round, nonce, '', new Uint8Array(0));
  }

  /** A client declines the open round (for example: its privacy budget would be exceeded). */
  decline(clientId: string, token: string, round: number, reason: string): void {
    this.authenticate(clientId, token);
    const r = this.requireOpenRound(round);
    if (!r.cohort.has(clientId) || r.protocol.hasReported(clientId)) return;
    r.declined.set(clientId, reason.slice(0, 200));
    this.log.info({ event: 'client.declined', round, client: clientId, reason: reason.slice(0, 200) });
    this.changed.notify();
  }

  /**
   * Liveness signal while training; says whether the attempt this client is working on is still
   * open. A retry of the same round is another attempt: a client still training the closed one
   * hears `roundOpen: false`, stops, and asks for the retry's plan (the heartbeat carries only
   * the round number, so the attempt is the one this client was last handed).
   */
  heartbeat(clientId: string, token: string, round: number): { roundOpen: boolean } {
    this.authenticate(clientId, token);
    const r = this.current;
    const open = !!r && !r.closed && r.plan.round === round && this.issued.get(clientId) === r.plan.nonce;
    if (open) this.lastActive.set(clientId, this.clock.now());
    return { roundOpen: open };
  }

  /** The plan of the open round `round`; throws failed-precondition if it is not open. */
  openPlan(round: number): RoundPlan {
    return this.requireOpenRound(round).plan;
  }

  /**
   * The plan of the open round `round` if `clientId` may deliver an update for it now (in its
   * cohort, not reported yet); throws otherwise. The transport asks before it reserves memory for
   * an upload, so a client outside the cohort (or done) cannot hold any (#16 finding 4).
   */
  expectUpdateFrom(clientId: string, round: number): RoundPlan {
    const r = this.requireOpenRound(round);
    if (!r.cohort.has(clientId)) throw new FederationError('permission-denied', `client ${clientId} is not in the cohort of round ${round}`);
    if (r.protocol.hasReported(clientId)) throw new FederationError('already-exists', `client ${clientId} already delivered its update for round ${round}`);
    return r.plan;
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
    return {
      federationId: this.opts.federationId,
      state: this.state,
      currentRound: this.current?.plan.round ?? this.completedRounds,
      completedRounds: this.completedRounds,
      totalRounds: this.opts.rounds,
      connectedClients: this.registry.liveCount(),
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
      stage: r.protocol.stage,
      cohort: r.cohort.size,
      reported: r.protocol.reportedCount,
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

  /**
   * After the run finished: waits until every live client has been told so (they then exit 0),
   * or `timeoutMs` passes, so a coordinator that exits when done does not strand its clients.
   */
  async drain(timeoutMs: number): Promise<void> {
    const until = this.clock.now() + timeoutMs;
    // The clients to tell, fixed once: every wake then checks only those not told yet.
    let pending = [...new Set([...this.registry.live(), ...(this.opts.rejoin?.clients ?? [])])];
    while (this.clock.now() < until && (pending = pending.filter((c) => !this.toldFinished.has(c))).length > 0) {
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
      this.excludedFromRerun.clear();
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

  private async waitForClients(): Promise<void> {
    this.state = 'waiting-for-clients';
    // Members left out of this round's reruns neither count nor are waited for.
    const eligible = () => this.registry.liveCount(this.excludedFromRerun);
    const needed = Math.max(this.opts.minClients, (this.opts.minAvailableClients ?? 0) - this.excludedFromRerun.size);
    while (eligible() < needed && !this.stopController.signal.aborted) {
      await this.changed.wait(1000, this.stopController.signal);
    }
    const rejoin = this.pendingRejoin;
    if (!rejoin) return;
    this.pendingRejoin = undefined;
    const until = this.clock.now() + rejoin.graceMs;
    const missing = () => rejoin.clients.filter((c) => !this.registry.isLiveClient(c));
    while (missing().length > 0 && this.clock.now() < until && !this.stopController.signal.aborted) {
      await this.changed.wait(Math.min(1000, until - this.clock.now()), this.stopController.signal);
    }
    const absent = missing();
    if (absent.length > 0) this.log.warn({ event: 'federation.rejoin-incomplete', missing: absent, graceMs: rejoin.graceMs });
    else this.log.info({ event: 'federation.rejoined', clients: rejoin.clients.length });
  }

  private selectCohort(): { cohort: string[]; sampling: CohortSampling } {
    const eligible = this.registry.live().filter((c) => !this.excludedFromRerun.has(c));
    return drawCohort(eligible, this.opts.clientsPerRound, this.opts.sampling ?? 'uniform', this.rng, this.opts.minClients);
  }

  private async runRound(round: number, attempt: number): Promise<boolean> {
    const { cohort, sampling } = this.selectCohort();
    const startedAt = this.clock.now();
    const base: RoundPlan = {
      round,
      attempt,
      adapterSha256: sha256Named(this.global),
      tensors: [...this.global].map(([name, t]) => ({ name, shape: [...t.shape] })),
      localSteps: this.opts.localSteps,
      learningRate: this.opts.learningRate,
      batchSize: this.opts.batchSize,
      deadlineUnixMs: startedAt + this.opts.roundDeadlineMs,
      nonce: Buffer.from(this.rng(16)).toString('hex'),
      ...this.opts.planParts?.(round),
      sampling,
      // Plain FedAvg weighs updates by claimed example counts: capped at twice the cohort's median registered claim.
      ...capOf(exampleWeightCap(cohort.map((c) => this.registry.numExamples(c)))),
    };
    let protocol: RoundProtocol;
    try {
      protocol = this.openProtocol({ plan: base, cohort, now: startedAt, aggregation: this.opts.aggregation ?? weightedFedAvg });
    } catch (err) {
      const reason = (err as Error).message;
      this.log.warn({ event: 'round.aborted', round, attempt, reason });
      const summary: RoundSummary = {
        round, attempt, status: 'aborted', participants: 0, participantNames: [], cohort: cohort.length, dropped: [], declined: [], trainLoss: null,
        numExamples: 0, adapterSha256: null, reason, startedAt, endedAt: this.clock.now(), metrics: {},
      };
      await this.opts.onRoundEnd?.(summary, null, base);
      this.history.push(summary);
      await this.changed.wait(1000, this.stopController.signal);
      return false;
    }
    const plan = protocol.plan;
    this.opts.onRoundStart?.(plan, cohort);
    const r: OpenRound = { plan, cohort: new Set(cohort), declined: new Map(), protocol, closed: false, startedAt };
    this.current = r;
    this.state = 'training';
    this.log.info({ event: 'round.started', round, attempt, cohort: cohort.length });
    this.changed.notify();

    const cause = await this.waitUntilSettled(r);
    r.closed = true;
    const result = protocol.close(cause);
    this.stageChanged.notify();
    const { summary, newAdapter, misbehaved } = concludeRound({ round, attempt, cohort, declined: r.declined, startedAt, result, minClients: this.opts.minClients, global: this.global, strategy: this.opts.strategy, clock: this.clock, log: this.log });
    for (const m of misbehaved) this.excludedFromRerun.set(m.client, m.reason);
    const { participants, trainLoss } = summary;
    await this.opts.onRoundEnd?.(summary, newAdapter, plan);
    this.history.push(summary);
    if (newAdapter) {
      this.global = newAdapter;
      this.completedRounds = round;
      this.log.info({ event: 'round.completed', round, attempt, participants, trainLoss, adapterSha256: summary.adapterSha256, ...(summary.evaluation ? { evaluation: summary.evaluation } : {}) });
    }
    this.previous = r;
    this.current = null;
    this.changed.notify();
    return newAdapter !== null;
  }

  /** Waits until the round's protocol has settled, every client declined, the deadline passed, or shutdown. */
  private async waitUntilSettled(r: OpenRound): Promise<CloseCause> {
    for (;;) {
      const now = this.clock.now();
      const view = { now, cohort: r.cohort, declined: r.declined, lastActive: (c: string) => this.lastActive.get(c) ?? 0 };
      const stage = r.protocol.stage;
      const settled = r.protocol.settle(view);
      // Stage changes of a multi-stage protocol (SecAgg+), so an operator sees where a long round spends its time.
      if (r.protocol.stage !== stage) {
        this.log.info({ event: 'round.stage', round: r.plan.round, attempt: r.plan.attempt, stage: r.protocol.stage, elapsedMs: now - r.startedAt });
        this.stageChanged.notify();
      }
      if (settled) return { kind: 'settled' };
      if (r.declined.size >= r.cohort.size) return { kind: 'declined', reasons: [...r.declined.values()] };
      if (now >= r.plan.deadlineUnixMs) return { kind: 'deadline' };
      if (this.stopController.signal.aborted) return { kind: 'stopping' };
      const wake = Math.min(r.protocol.nextWake(now), r.plan.deadlineUnixMs);
      await this.changed.wait(Math.max(1, Math.min(wake - now, 1000)), this.stopController.signal);
    }
  }
}

/** Most sessions one batched check-in may carry (a bound on the work and the answer of one call). */
export const MAX_CHECK_IN_BATCH = 1024;

/** The plan part carrying a weight cap (none when no count was known). */
function capOf(cap: number | undefined): { weightCap?: number } {
  return cap === undefined ? {} : { weightCap: cap };
}
