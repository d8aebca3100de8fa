import type { Stage } from '@fedlora/secagg';
import type { Clock } from './clock.js';
import { FederationError } from './errors.js';
import type { RoundAggregation } from './round-aggregation.js';
import type { CloseCause, ProtocolStart, RoundProtocol, RoundResult, RoundView } from './round-protocol.js';
import type { ClientReport, ClientUpdate, RoundPlan, SecAggReply } from './types.js';
import { validateUpdate } from './validate-update.js';

/** Options of plain rounds. */
export interface PlainRoundOptions {
  /** A round completes only if at least this many clients reported. */
  minClients: number;
  /** Once minClients have reported, wait at most this long for the rest of the cohort. */
  waitAfterMinimumMs?: number;
  clock: Clock;
}

/**
 * A round of plain updates: each client uploads its whole delta, which is validated against the
 * plan and added to the aggregation at once (memory O(d) whatever the cohort size).
 */
export class PlainRound implements RoundProtocol {
  readonly plan: RoundPlan;
  private readonly aggregation: RoundAggregation;
  private readonly reports = new Map<string, ClientReport>();
  private minReachedAt: number | undefined;
  private closed = false;

  constructor(
    start: ProtocolStart,
    private readonly opts: PlainRoundOptions,
  ) {
    this.plan = start.plan;
    this.aggregation = start.aggregation(this.plan);
  }

  readonly stage = 'collecting updates';

  get reportedCount(): number {
    return this.reports.size;
  }

  hasReported(client: string): boolean {
    return this.reports.has(client);
  }

  acceptUpdate(client: string, update: ClientUpdate): void {
    if (this.closed) throw new FederationError('failed-precondition', `round ${this.plan.round} is closed: late results are discarded`);
    if (this.reports.has(client)) throw new FederationError('already-exists', `client ${client} already reported for round ${this.plan.round}`);
    validateUpdate(this.plan, update.header, update.delta);
    this.aggregation.add(client, update);
    this.reports.set(client, { numExamples: update.header.numExamples, trainLoss: update.header.trainLoss, metrics: update.header.metrics });
    if (this.reports.size >= this.opts.minClients && this.minReachedAt === undefined) this.minReachedAt = this.opts.clock.now();
  }

  exchange(_client: string, _stage: Stage | '', _payload: Uint8Array): SecAggReply {
    throw new FederationError('failed-precondition', `round ${this.plan.round} does not use secure aggregation`);
  }

  settle(view: RoundView): boolean {
    const declined = [...view.declined.keys()].filter((c) => !this.reports.has(c)).length;
    if (this.reports.size + declined >= view.cohort.size) return true;
    return this.minReachedAt !== undefined && view.now - this.minReachedAt >= this.waitAfterMinimumMs;
  }

  nextWake(_now: number): number {
    return this.minReachedAt !== undefined ? this.minReachedAt + this.waitAfterMinimumMs : Number.POSITIVE_INFINITY;
  }

  close(_cause: CloseCause): RoundResult {
    this.closed = true;
    return { survivors: this.reports, aggregate: () => this.aggregation.finalize() };
  }

  private get waitAfterMinimumMs(): number {
    return this.opts.waitAfterMinimumMs ?? Number.POSITIVE_INFINITY;
  }
}
