import type { Stage } from '@fedlora/secagg';
import { FederationError } from './errors.js';
import { updateTensors } from './lora-variant.js';
import type { AggregateResult, RoundAggregation } from './round-aggregation.js';
import type { CloseCause, ProtocolStart, RoundProtocol, RoundResult, RoundView } from './round-protocol.js';
import type { SecureAggregationOptions } from './secure-round.js';
import { SecureRound } from './secure-round.js';
import type { ClientReport, ClientUpdate, RoundPlan, SecAggReply } from './types.js';
import { MAX_NUM_EXAMPLES } from './validate-update.js';

/**
 * A round under secure aggregation (SecAgg+, see SecureRound): the plan carries the protocol's
 * roster and encoding, clients send masked inputs (the first one with their training report),
 * and the coordinator learns only the survivors' sum, which the aggregation finalizes. The
 * institutions' evaluation metrics are summed inside the same masked vector (secure-evaluation.ts).
 */
export class SecureRoundProtocol implements RoundProtocol {
  readonly plan: RoundPlan;
  private readonly secure: SecureRound;
  private readonly aggregation: RoundAggregation;
  private readonly reports = new Map<string, ClientReport>();
  /** After close: the survivors (null when the protocol aborted). */
  private ended: Set<string> | null | undefined;

  constructor(start: ProtocolStart, opts: SecureAggregationOptions) {
    const { plan } = start;
    try {
      // The secure sum covers what an update carries: every tensor for plain LoRA, only the B matrices for FFA-LoRA.
      this.secure = new SecureRound(plan.round, start.cohort, updateTensors(plan), opts, plan.deadlineUnixMs, start.now);
    } catch (err) {
      throw new FederationError(err instanceof FederationError ? err.code : 'failed-precondition', `secure aggregation could not start: ${(err as Error).message}`);
    }
    this.plan = { ...plan, secagg: this.secure.plan };
    this.aggregation = start.aggregation(this.plan);
  }

  get reportedCount(): number {
    return this.reports.size;
  }

  get stage(): string {
    return `secagg ${this.secure.stage}`;
  }

  hasReported(client: string): boolean {
    return this.reports.has(client);
  }

  acceptUpdate(_client: string, _update: ClientUpdate): void {
    throw new FederationError('failed-precondition', `round ${this.plan.round} uses secure aggregation: send the update through SecAggExchange`);
  }

  exchange(client: string, stage: Stage | '', payload: Uint8Array, report?: ClientReport): SecAggReply {
    if (this.ended !== undefined) return { kind: this.ended?.has(client) ? 'finished' : 'aborted', stage: '', payload: new Uint8Array(0) };
    const firstInput = stage === 'collect' && payload.length > 0 && !this.reports.has(client);
    if (firstInput) checkReport(this.plan.round, report);
    const reply = this.secure.exchange(client, stage, payload);
    if (firstInput) this.reports.set(client, { numExamples: report!.numExamples, trainLoss: report!.trainLoss });
    return reply;
  }

  settle(view: RoundView): boolean {
    if (this.secure.tick(view.now, view.lastActive)) return true;
    return view.declined.size >= view.cohort.size;
  }

  nextWake(_now: number): number {
    return this.secure.nextDeadline();
  }

  close(cause: CloseCause): RoundResult {
    if (this.secure.stage !== 'finished') {
      const why =
        cause.kind === 'declined'
          ? `every client declined the round (${[...new Set(cause.reasons)].join('; ')})`
          : cause.kind === 'deadline'
            ? 'round deadline passed before secure aggregation finished'
            : 'the coordinator is stopping';
      const failure = this.secure.abortReason ?? why;
      this.secure.abort(why);
      this.ended = null;
      return { survivors: new Map(), failure, misbehaved: this.secure.misbehaved(), aggregate: () => { throw new RangeError(failure); } };
    }
    const { survivors, delta, centredCount, evaluation } = this.secure.result(updateTensors(this.plan));
    this.ended = new Set(survivors);
    // Only the survivors' updates are in the sum: reports of clients that dropped later do not count.
    const reports = new Map(survivors.map((c) => [c, this.reports.get(c)!]));
    const aggregate = (): AggregateResult => {
      if (!this.aggregation.finalizeSecure) return { delta, metrics: { aggregated: survivors.length, secure: 1 } };
      const r = this.aggregation.finalizeSecure(delta, survivors.length, { centredCount });
      return { ...r, metrics: { ...r.metrics, secure: 1 } };
    };
    return { survivors: reports, misbehaved: this.secure.misbehaved(), aggregate, ...(evaluation ? { evaluation } : {}) };
  }
}

/** The training report a client must send with its first masked-input message. */
function checkReport(round: number, report: ClientReport | undefined): void {
  if (!report || !Number.isInteger(report.numExamples) || report.numExamples < 1 || report.numExamples > MAX_NUM_EXAMPLES || !Number.isFinite(report.trainLoss)) {
    throw new FederationError(
      'invalid-argument',
      `round ${round}: the first masked-input message must carry the training report (integer numExamples in [1, ${MAX_NUM_EXAMPLES}], finite trainLoss), received ${JSON.stringify(report ?? null)}`,
    );
  }
}
