import type { NamedTensors } from '@fedlora/tensor';
import { WeightedMeanAggregator } from './aggregator.js';
import type { AdaptiveClippingStep, ClientUpdate, RoundPlan } from './types.js';
import { updateTensors } from './lora-variant.js';

/** What a round's aggregation produces: the averaged delta, metrics to record, and its adaptive-clipping step if it took one. */
export interface AggregateResult {
  delta: NamedTensors;
  metrics: Record<string, number>;
  adaptiveClipping?: AdaptiveClippingStep;
}

/**
 * How one round turns the accepted updates into one averaged delta. The default is the
 * example-weighted FedAvg mean; privacy (central noise) and secure aggregation plug in here
 * by supplying another factory to the coordinator.
 */
export interface RoundAggregation {
  /** Adds one validated update; called once per accepted client. */
  add(clientId: string, update: ClientUpdate): void;
  /** The averaged delta over the added updates, plus metrics to record for the round. */
  finalize(): AggregateResult;
  /**
   * With secure aggregation no update is added: the coordinator only learns the survivors' mean.
   * An aggregation that must still act on the result (central DP noise) does it here.
   */
  finalizeSecure?(mean: NamedTensors, survivors: number, decoded?: { centredCount?: number }): AggregateResult;
}

/** Creates the aggregation for a round from its plan. */
export type RoundAggregationFactory = (plan: RoundPlan) => RoundAggregation;

/**
 * How many times the cohort's median claimed example count one update may weigh at most under
 * plain FedAvg (exampleWeightCap). An example count is a claim the coordinator cannot verify.
 */
export const MAX_WEIGHT_OVER_MEDIAN = 2;

/**
 * The weight cap of a round: MAX_WEIGHT_OVER_MEDIAN x the median of the example counts the cohort
 * registered with. A claim is only a claim: without a cap, one institution claiming 1e9 examples
 * makes the average its own update. The median stays honest while most of the cohort is, so a
 * liar weighs at most twice a typical institution (its share of n updates is at most 2 / (n + 1));
 * an honest institution with much more data than the median is capped too, the price of not
 * trusting claims. Undefined (no cap) when no count is known.
 */
export function exampleWeightCap(claimed: readonly number[], ratio = MAX_WEIGHT_OVER_MEDIAN): number | undefined {
  const xs = claimed.filter((n) => Number.isFinite(n) && n > 0).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return ratio * median;
}

/**
 * Example-weighted FedAvg (McMahan et al. 2017): weights are the clients' example counts, each
 * capped at the round's `weightCap` (exampleWeightCap); `weightsCapped` counts the capped ones.
 */
export const weightedFedAvg: RoundAggregationFactory = (plan) => {
  const agg = new WeightedMeanAggregator(updateTensors(plan));
  const cap = plan.weightCap ?? Number.POSITIVE_INFINITY;
  let capped = 0;
  return {
    add: (_clientId, update) => {
      const n = update.header.numExamples;
      if (n > cap) capped++;
      agg.add(update.delta, Math.min(n, cap));
    },
    finalize: () => ({ delta: agg.mean(), metrics: { aggregated: agg.size, weightsCapped: capped } }),
  };
};
