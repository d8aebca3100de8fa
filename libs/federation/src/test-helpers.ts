import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { CoordinatorOptions } from './coordinator.js';
import { FederationCoordinator } from './coordinator.js';
import { createStrategy } from './strategy.js';
import type { LocalTrainer } from './client-runner.js';
import type { RoundPlan } from './types.js';

/** A two-tensor adapter for tests: values 0..n-1 scaled. */
export function tinyAdapter(scale = 0): NamedTensors {
  return new Map([
    ['lora_A', { shape: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => scale * i) }],
    ['lora_B', { shape: [3, 2], data: new Float32Array(6) }],
  ]);
}

/** A trainer whose delta is `value` everywhere: lets a test compute FedAvg by hand. */
export function constantTrainer(value: number, numExamples: number, delayMs = 0): LocalTrainer & { plans: RoundPlan[] } {
  const plans: RoundPlan[] = [];
  return {
    numExamples,
    plans,
    async train(plan, global) {
      plans.push(plan);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const delta: NamedTensors = new Map();
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) });
      return { delta, numExamples, trainLoss: 1 / (plan.round + value) };
    },
  };
}

/**
 * A coordinator for tests: one plain FedAvg round over `tinyAdapter(1)` with a seeded rng; `over`
 * sets what a test is about (clients, deadlines, secure aggregation, privacy parts).
 */
export function testCoordinator(over: Partial<CoordinatorOptions> = {}): FederationCoordinator {
  return new FederationCoordinator({
    federationId: 'test',
    rounds: 1,
    minClients: 2,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: tinyAdapter(1),
    rng: seededRandomBytes('coord'),
    ...over,
  });
}
