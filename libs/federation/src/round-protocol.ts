import type { Stage } from '@fedlora/secagg';
import type { AggregateResult, RoundAggregationFactory } from './round-aggregation.js';
import type { RoundEvaluation } from './round-evaluation.js';
import type { ClientReport, ClientUpdate, RoundPlan, SecAggReply } from './types.js';

/** What the coordinator knows of an open round that its protocol needs to decide it has settled. */
export interface RoundView {
  now: number;
  cohort: ReadonlySet<string>;
  /** Clients that declined the round, with their reasons. */
  declined: ReadonlyMap<string, string>;
  /** Time of a client's last heartbeat or protocol message (0: never). */
  lastActive(client: string): number;
}

/** Why the coordinator stopped waiting for a round: it settled, every client declined, its deadline passed, or shutdown. */
export type CloseCause = { kind: 'settled' } | { kind: 'declined'; reasons: string[] } | { kind: 'deadline' } | { kind: 'stopping' };

/** How a round's protocol ended. */
export interface RoundResult {
  /** Clients whose input is in the aggregate, with the reports they sent with it. */
  survivors: ReadonlyMap<string, ClientReport>;
  /** Why the protocol itself failed (nothing can be aggregated), if it did. */
  failure?: string;
  /** Clients caught misbehaving (the coordinator leaves them out of this round's reruns), with what they did. */
  misbehaved?: ReadonlyMap<string, string>;
  /** The survivors' evaluation when the protocol summed it (secure rounds); else the coordinator combines the reports' metrics. */
  evaluation?: RoundEvaluation;
  /** The survivors' averaged delta (only when there is no failure; call once). */
  aggregate(): AggregateResult;
}

/**
 * One attempt of a round as a protocol: it completes the plan with its own parts, accepts the
 * cohort's inputs, says when nothing more can arrive, and ends with the survivors, their reports
 * and the aggregate. The coordinator's round loop (plan -> protocol -> aggregate -> commit) is the
 * same for every kind: plain updates (PlainRound) or secure aggregation (SecureRoundProtocol).
 */
export interface RoundProtocol {
  /** The complete plan the cohort receives. */
  readonly plan: RoundPlan;
  /** Whether `client` has delivered its input (it is not asked to train again). */
  hasReported(client: string): boolean;
  /** Clients that have delivered their input so far. */
  readonly reportedCount: number;
  /** What the round is doing now, for operators (e.g. "collecting updates", "secagg share"). */
  readonly stage: string;
  /** A complete plain update. */
  acceptUpdate(client: string, update: ClientUpdate): void;
  /** One secure-aggregation exchange (an empty payload polls); after close, tells how the round ended. */
  exchange(client: string, stage: Stage | '', payload: Uint8Array, report?: ClientReport): SecAggReply;
  /** True when nothing more can arrive; may close internal stages whose deadline passed. */
  settle(view: RoundView): boolean;
  /** The latest time at which `settle` should be called again. */
  nextWake(now: number): number;
  /** Ends the protocol (no input is accepted afterwards). */
  close(cause: CloseCause): RoundResult;
}

/** What opening a round's protocol needs. */
export interface ProtocolStart {
  /** The plan without the protocol's parts. */
  plan: RoundPlan;
  cohort: string[];
  now: number;
  aggregation: RoundAggregationFactory;
}

/** Opens the protocol of one round attempt; throws (with the reason) when it cannot start. */
export type RoundProtocolFactory = (start: ProtocolStart) => RoundProtocol;
