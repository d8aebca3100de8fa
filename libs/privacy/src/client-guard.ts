import type { Conversion } from './conversion.js';
import { BudgetExceededError, PrivacyBudget } from './budget.js';
import { Ledger, type LedgerSigner } from './ledger.js';
import type { NoiseCalibration } from './calibration.js';
import type { LedgerEntry, LedgerHead, LedgerRecordInput } from './ledger-format.js';

/** Where an entry sits in the federation: the round attempt and the federation ledger head its plan announced. */
export type RoundAnchor = Pick<LedgerRecordInput, 'attempt' | 'federationHead'>;
import { unitLabel, validateUnit, type PrivacyUnit } from './privacy-unit.js';
import { roundEvents, type RoundPrivacyParams } from './round-events.js';

/** A client's decision on a planned round. `reason` is all the coordinator may learn. */
export type RoundDecision = { accept: true; epsilonAfter: number } | { accept: false; reason: 'budget'; epsilonAfter: number; message: string };

/** Options of ClientPrivacyGuard.open. */
export interface ClientGuardOptions {
  ledgerPath: string;
  signer: LedgerSigner;
  /** The institution's budget for this privacy unit. */
  budget: { epsilon: number; delta: number };
  unit: Exclude<PrivacyUnit, 'record'>;
  /** With unit `field`: the field that defines a unit (e.g. `patient_id`). */
  unitField?: string;
  orders?: string | number[];
  conversion?: Conversion;
}

/**
 * The data owner's enforcement point: before a round it computes what the planned release would
 * cost and refuses it if the budget would be exceeded; after a release it commits the spend to
 * its own signed ledger. The ledger is the source of truth: reopening restores the spend, so a
 * restarted client cannot forget what it has already released.
 */
export class ClientPrivacyGuard {
  private constructor(
    private readonly ledger: Ledger,
    private readonly budget: PrivacyBudget,
    private readonly opts: ClientGuardOptions,
  ) {}

  /** Opens (or creates) the client's ledger and restores its spend. */
  static async open(opts: ClientGuardOptions): Promise<ClientPrivacyGuard> {
    validateUnit(opts.unit, opts.unitField);
    const ledger = await Ledger.open(opts.ledgerPath, { ...opts.signer, role: 'client' }, { delta: opts.budget.delta, ...(opts.orders ? { orders: opts.orders } : {}), ...(opts.conversion ? { conversion: opts.conversion } : {}) });
    const fresh = new PrivacyBudget({ epsilon: opts.budget.epsilon, delta: opts.budget.delta, ...(opts.orders ? { orders: opts.orders } : {}), ...(opts.conversion ? { conversion: opts.conversion } : {}) });
    const budget = PrivacyBudget.fromJSON({ ...fresh.toJSON(), rdp: ledger.spent().rdp, events: ledger.length });
    return new ClientPrivacyGuard(ledger, budget, opts);
  }

  /**
   * Decides on a planned round. For distributed noise, plan with `survivors` set to the fewest
   * survivors that can still complete the round (the secure-aggregation threshold).
   */
  plan(params: RoundPrivacyParams): RoundDecision {
    let epsilonAfter = this.budget.spent().epsilon;
    const events = roundEvents(params);
    const probe = PrivacyBudget.fromJSON(this.budget.toJSON());
    try {
      for (const e of events) epsilonAfter = probe.commit(e).epsilon;
      return { accept: true, epsilonAfter };
    } catch (err) {
      if (!(err instanceof BudgetExceededError)) throw err;
      return {
        accept: false,
        reason: 'budget',
        epsilonAfter: err.epsilonAfter,
        message: `refused: the round would bring epsilon to ${err.epsilonAfter.toFixed(4)}, above this institution's budget ${this.opts.budget.epsilon} (delta ${this.opts.budget.delta})`,
      };
    }
  }

  /** Records a completed release with the parameters actually used (e.g. the real survivors). */
  async record(round: number, params: RoundPrivacyParams, extra: { time?: string; subject?: string; calibration?: NoiseCalibration } & RoundAnchor = {}): Promise<LedgerEntry> {
    for (const e of roundEvents(params)) this.budget.commit(e);
    return this.ledger.append({ kind: 'round', round, unit: this.opts.unit, ...this.unitFieldPart(), params, budget: this.opts.budget, ...extra });
  }

  /** Records that the client refused a round (nothing released). */
  async refuse(round: number, note: string, extra: { time?: string } & RoundAnchor = {}): Promise<LedgerEntry> {
    return this.ledger.append({ kind: 'refused', round, unit: this.opts.unit, ...this.unitFieldPart(), budget: this.opts.budget, note, ...extra });
  }

  /** Records a round that was aborted after the client joined (nothing released). */
  async aborted(round: number, note: string, extra: { time?: string } = {}): Promise<LedgerEntry> {
    return this.ledger.append({ kind: 'aborted', round, unit: this.opts.unit, ...this.unitFieldPart(), budget: this.opts.budget, note, ...extra });
  }

  /** The federation ledger head this institution's ledger last recorded (a later plan's head must extend it). */
  lastFederationHead(): LedgerHead | undefined {
    return this.ledger.lastAnchoredHead();
  }

  /** The (epsilon, delta) budget this guard enforces. */
  get budgetLimit(): { epsilon: number; delta: number } {
    return { ...this.opts.budget };
  }

  /** Epsilon spent so far at the budget's delta. */
  spent(): number {
    return this.budget.spent().epsilon;
  }

  /** True when no release at all fits any more. */
  exhausted(): boolean {
    return this.budget.exhausted();
  }

  /** The unit as printed beside an epsilon ("document", "patient_id", "institution"). */
  get unitLabel(): string {
    return unitLabel(this.opts.unit, this.opts.unitField);
  }

  private unitFieldPart(): { unitField?: string } {
    return this.opts.unitField !== undefined ? { unitField: this.opts.unitField } : {};
  }

  /** The ledger file. */
  get ledgerPath(): string {
    return this.ledger.path;
  }
}
