import { composeRdp, validateEvent, type PrivacyEvent } from './accountant.js';
import { rdpToEpsilon, type Conversion } from './conversion.js';
import { resolveOrders } from './orders.js';

/** Options of a PrivacyBudget: the (epsilon, delta) the data owner allows for one privacy unit. */
export interface PrivacyBudgetOptions {
  epsilon: number;
  delta: number;
  /** Preset name or explicit list (default: dp-accounting's orders). */
  orders?: string | number[];
  conversion?: Conversion;
}

/** Serialised budget: limits plus the composed RDP curve spent so far. */
export interface PrivacyBudgetState {
  epsilon: number;
  delta: number;
  orders: number[];
  conversion: Conversion;
  rdp: number[];
  events: number;
}

/** Thrown when a planned release would exceed the budget; `reason` is what the coordinator may learn. */
export class BudgetExceededError extends Error {
  override name = 'BudgetExceededError';
  readonly reason = 'budget';
  constructor(
    readonly epsilonAfter: number,
    readonly epsilonBudget: number,
  ) {
    super(`privacy budget exhausted: the planned round would bring epsilon to ${epsilonAfter.toFixed(4)}, above the budget ${epsilonBudget}`);
  }
}

/**
 * A data owner's budget for one privacy unit (record-level or institution-level). The client
 * asks `wouldExceed(plannedEvent)` before a round and refuses it if true (the coordinator learns
 * only "refused: budget"); after the release it calls `commit(event)`. The state is an RDP curve,
 * so heterogeneous events compose exactly as the accountant does.
 */
export class PrivacyBudget {
  readonly epsilon: number;
  readonly delta: number;
  readonly orders: number[];
  readonly conversion: Conversion;
  private rdp: number[];
  private count = 0;

  constructor(opts: PrivacyBudgetOptions) {
    if (!(opts.epsilon > 0)) throw new RangeError(`budget epsilon must be > 0, received ${opts.epsilon}`);
    if (!(opts.delta > 0 && opts.delta < 1)) throw new RangeError(`budget delta must be in (0, 1), received ${opts.delta}`);
    this.epsilon = opts.epsilon;
    this.delta = opts.delta;
    this.orders = resolveOrders(opts.orders);
    this.conversion = opts.conversion ?? 'improved';
    this.rdp = new Array<number>(this.orders.length).fill(0);
  }

  /** Epsilon (at the budget's delta) and RDP curve spent so far. */
  spent(): { epsilon: number; order: number; rdp: number[] } {
    const { epsilon, order } = rdpToEpsilon(this.orders, this.rdp, this.delta, this.conversion);
    return { epsilon, order, rdp: [...this.rdp] };
  }

  /** Epsilon still available (budget - spent, >= 0). */
  remaining(): number {
    return Math.max(0, this.epsilon - this.spent().epsilon);
  }

  /** True when nothing more can be released (spent epsilon has reached the budget). */
  exhausted(): boolean {
    return this.spent().epsilon >= this.epsilon;
  }

  private after(event: PrivacyEvent): number[] {
    const add = composeRdp([validateEvent(event)], this.orders);
    return this.rdp.map((r, i) => r + add[i]!);
  }

  /** What the planned event would bring the spent epsilon to, and whether that exceeds the budget. */
  wouldExceed(event: PrivacyEvent): { exceed: boolean; epsilonAfter: number } {
    const { epsilon } = rdpToEpsilon(this.orders, this.after(event), this.delta, this.conversion);
    return { exceed: epsilon > this.epsilon, epsilonAfter: epsilon };
  }

  /** Records a release. Throws BudgetExceededError (and records nothing) if it would exceed the budget. */
  commit(event: PrivacyEvent): { epsilon: number } {
    const next = this.after(event);
    const { epsilon } = rdpToEpsilon(this.orders, next, this.delta, this.conversion);
    if (epsilon > this.epsilon) throw new BudgetExceededError(epsilon, this.epsilon);
    this.rdp = next;
    this.count++;
    return { epsilon };
  }

  /** Serialisable state (limits, orders, curve). */
  toJSON(): PrivacyBudgetState {
    return { epsilon: this.epsilon, delta: this.delta, orders: [...this.orders], conversion: this.conversion, rdp: [...this.rdp], events: this.count };
  }

  /** Restores a budget from `toJSON()` output, checking its shape. */
  static fromJSON(state: PrivacyBudgetState): PrivacyBudget {
    if (typeof state !== 'object' || state === null) throw new TypeError(`budget state must be an object, received ${typeof state}`);
    const b = new PrivacyBudget({ epsilon: state.epsilon, delta: state.delta, orders: state.orders, conversion: state.conversion });
    if (!Array.isArray(state.rdp) || state.rdp.length !== b.orders.length || state.rdp.some((r) => !(r >= 0))) {
      throw new RangeError(`budget state rdp must be ${b.orders.length} numbers >= 0`);
    }
    b.rdp = [...state.rdp];
    b.count = state.events ?? 0;
    return b;
  }
}
