import type { DpFedAvgConfig, LedgerSigner } from '@fedlora/privacy';
import { Ledger, validateDpConfig } from '@fedlora/privacy';
import type { RoundAggregationFactory, RoundPlan, RoundSummary } from '@fedlora/federation';
import { centralDpAggregation, roundPrivacyParams } from '@fedlora/federation';
import type { RandomBytes } from '@fedlora/tensor';

/** Institution-level DP of a federation, as the coordinator plans, applies and records it. */
export interface FederationPrivacy {
  /** The DP-FedAvg parameters every client receives in the plan (they check them against their budgets). */
  planExtra(): { privacy: DpFedAvgConfig & { delta: number; dimension: number } };
  /** Aggregation with central noise (undefined in distributed mode: secure aggregation sums). */
  aggregation: RoundAggregationFactory | undefined;
  /** Appends the round's signed ledger entry; returns the line and the cumulative epsilon. */
  recordRound(summary: RoundSummary, plan: RoundPlan, time: string): Promise<{ line: string; epsilon: number }>;
  /** The federation's cumulative epsilon at the configured delta. */
  epsilon(): number;
  readonly ledgerPath: string;
}

/**
 * Opens the federation ledger and builds the privacy side of rounds. The ledger records the
 * survivors actually summed (never the planned cohort) and aborted rounds with nothing released.
 */
export async function createFederationPrivacy(opts: {
  config: DpFedAvgConfig;
  delta: number;
  dimension: number;
  ledgerPath: string;
  signer: LedgerSigner;
  rng: RandomBytes;
}): Promise<FederationPrivacy> {
  if (opts.config.mode === 'central') validateDpConfig(opts.config);
  else if (!opts.config.secureAggregation) throw new RangeError('distributed noise needs secure aggregation: each update would otherwise leave with only its own share of noise');
  const ledger = await Ledger.open(opts.ledgerPath, { ...opts.signer, role: 'coordinator' }, { delta: opts.delta });
  const aggregation =
    opts.config.mode === 'central' ? centralDpAggregation({ clipNorm: opts.config.clipNorm, noiseMultiplier: opts.config.noiseMultiplier, rng: opts.rng }) : undefined;
  return {
    ledgerPath: opts.ledgerPath,
    aggregation,
    planExtra: () => ({ privacy: { ...opts.config, delta: opts.delta, dimension: opts.dimension } }),
    async recordRound(s, plan, time) {
      const entry =
        s.status === 'completed'
          ? await ledger.append({ kind: 'round', round: s.round, unit: 'institution', params: roundPrivacyParams(plan, s.participants)!, time })
          : await ledger.append({ kind: 'aborted', round: s.round, unit: 'institution', note: s.reason ?? 'aborted', time });
      return { line: JSON.stringify(entry), epsilon: ledger.spent().epsilon };
    },
    epsilon: () => ledger.spent().epsilon,
  };
}
