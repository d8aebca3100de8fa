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

/** Example-weighted FedAvg (McMahan et al. 2017): weights are the clients' example counts. */
export const weightedFedAvg: RoundAggregationFactory = (plan) => {
  const agg = new WeightedMeanAggregator(updateTensors(plan));
  return {
    add: (_clientId, update) => agg.add(update.delta, update.header.numExamples),
    finalize: () => ({ delta: agg.mean(), metrics: { aggregated: agg.size } }),
  };
};
