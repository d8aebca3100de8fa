import type { Clock } from './clock.js';
import { FederationError } from './errors.js';
import type { RoundPlan } from './types.js';

/** What a client's liveness needs from its connection (see CoordinatorConnection.heartbeat). */
export interface HeartbeatLink {
  heartbeat(round: number): Promise<{ roundOpen: boolean }>;
}

/** Awaited by long work between its steps (see LocalTrainer.train). */
export type TrainingProgress = (step: number) => Promise<void>;

/**
 * The client's side of liveness for one round attempt, from the first training step to the
 * masked input: the long, mostly synchronous work (local training, then the secure encoding:
 * clip, rotate, quantize, noise, mask) calls `progress` between its steps.
 *
 * - Heartbeats: one at the start, then at most one every `everyMs` from `progress` (work that
 *   blocks the event loop cannot fire timers, but it does reach its next step), and a timer as
 *   a fallback for work that awaits I/O but reports no steps.
 * - Yields: each `progress` gives the event loop a turn, so the connection (and, in a
 *   simulation, the coordinator sharing this process) keeps running.
 * - The attempt's end: when a heartbeat reply says the attempt closed (its deadline passed, it
 *   aborted and a retry opened), or the client is stopping, the next `progress` throws, so the
 *   client stops training a round nobody will aggregate and asks for the retry at once.
 */
export class AttemptLiveness {
  private last: number;
  private closed = false;
  /** One heartbeat in flight at most: against a coordinator that hangs, beats would otherwise pile up. */
  private inFlight = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly link: HeartbeatLink,
    private readonly plan: Pick<RoundPlan, 'round' | 'attempt'>,
    private readonly everyMs: number,
    private readonly clock: Clock,
    private readonly signal?: AbortSignal,
  ) {
    this.last = clock.now();
    this.beat();
    this.timer = setInterval(() => {
      if (this.clock.now() - this.last >= this.everyMs) this.beat();
    }, everyMs);
  }

  /** Whether a heartbeat reply said this attempt is no longer open. */
  get attemptClosed(): boolean {
    return this.closed;
  }

  /** Between steps of long work: heartbeat when due, yield; throws when the attempt closed or the client is stopping. */
  readonly progress: TrainingProgress = async () => {
    this.check();
    if (this.clock.now() - this.last >= this.everyMs) this.beat();
    await yieldToEventLoop();
    this.check();
  };

  /** Stops the fallback timer (the work ended). */
  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    if (this.signal?.aborted) throw new FederationError('unavailable', `round ${this.plan.round}: the client is stopping`);
    if (this.closed) {
      throw new FederationError(
        'failed-precondition',
        `round ${this.plan.round} attempt ${this.plan.attempt} closed at the coordinator while this client worked on it: stopped; the next attempt is picked up`,
      );
    }
  }

  private beat(): void {
    this.last = this.clock.now();
    if (this.inFlight) return;
    this.inFlight = true;
    this.link
      .heartbeat(this.plan.round)
      .then(
        (r) => {
          if (!r.roundOpen) this.closed = true;
        },
        () => {}, // a lost heartbeat is retried by the next step; the protocol's own calls report outages
      )
      .finally(() => (this.inFlight = false));
  }
}

/** Lets timers and I/O run (a resolved promise would not: microtasks run before them). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
