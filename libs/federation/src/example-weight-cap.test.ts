import { describe, expect, it } from 'vitest';
import { testCoordinator } from './test-helpers.js';
import type { NamedTensors } from '@fedlora/tensor';
import type { LocalTrainer } from './client-runner.js';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { exampleWeightCap } from './round-aggregation.js';

const adapter = (): NamedTensors => new Map([['w', { shape: [4], data: new Float32Array(4) }]]);

/** A client whose update is `value` everywhere and who claims `examples` (at registration and with its update). */
const claiming = (value: number, examples: number): LocalTrainer => ({
  numExamples: examples,
  async train(_plan, global) {
    return { delta: new Map([...global].map(([k, t]) => [k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) }])), numExamples: examples, trainLoss: 1 };
  },
});

describe('plain FedAvg weights (issue 16, finding 13b)', () => {
  it('an institution claiming 1e9 examples weighs at most twice the median claim: it cannot make the average its own update', async () => {
    const coordinator = testCoordinator({
      federationId: 'weights',
      minClients: 3,
      initialAdapter: adapter(),
    });
    const done = coordinator.run();
    // Two honest institutions with 100 examples send 0; the liar sends 1 and claims 1e9.
    const clients = [claiming(0, 100), claiming(0, 100), claiming(1, 1e9)];
    await Promise.all(clients.map((trainer, i) => runClient({ name: `c${i}`, connection: inProcessConnection(coordinator), trainer, pollMs: 50 })));
    const [summary] = await done;
    expect(summary!.status).toBe('completed');
    // Uncapped, the mean would be 1e9 / (1e9 + 200), i.e. 1; capped at 2 x 100 it is 200 / 400.
    for (const v of coordinator.adapter.get('w')!.data) expect(v).toBeCloseTo(0.5, 6);
    expect(summary!.metrics.weightsCapped).toBe(1);
  });

  it('caps at twice the median claim, and leaves similar claims alone', () => {
    expect(exampleWeightCap([100, 120, 1e9])).toBe(240);
    expect(exampleWeightCap([100, 110, 120, 130])).toBe(230);
    expect(exampleWeightCap([])).toBeUndefined();
  });
});
