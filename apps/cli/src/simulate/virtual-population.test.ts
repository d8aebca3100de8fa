import type { BuiltClient } from '@fedlora/client';
import { FederationCoordinator, createStrategy, silentLogger } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { createSharedChannel, startFederationServer } from '@fedlora/transport-grpc';
import { describe, expect, it } from 'vitest';
import { runPopulation } from './virtual-population.js';

/** An adapter of many long-named tensors: its round plan (which lists every tensor) is ~50 KB. */
function wideAdapter(): NamedTensors {
  const t: NamedTensors = new Map();
  for (let i = 0; i < 400; i++) t.set(`layer.${i}.${'x'.repeat(100)}`, { shape: [1], data: new Float32Array(1) });
  return t;
}

describe('runPopulation check-ins', () => {
  it('finds the whole cohort when its plans are large: a check-in answer carries the attempt, not the ~50 KB plan', async () => {
    const n = 200; // 200 plans of ~50 KB = ~10 MB: over the transport's 8 MiB limit had one CheckIn carried them
    const coordinator = new FederationCoordinator({
      federationId: 'population-test',
      rounds: 1,
      minClients: n,
      minAvailableClients: n,
      roundDeadlineMs: 60_000,
      localSteps: 1,
      learningRate: 0.1,
      batchSize: 1,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: wideAdapter(),
      rng: seededRandomBytes('population-test'),
    });
    const server = await startFederationServer(coordinator, { address: '127.0.0.1:0' });
    const address = `127.0.0.1:${server.port}`;
    const channel = createSharedChannel({ address });
    const stop = new AbortController();
    const drawn = new Set<number>();
    const events: string[] = [];
    const run = coordinator.run().catch(() => undefined);
    try {
      const population = runPopulation({
        address,
        channel,
        names: Array.from({ length: n }, (_, i) => `inst-${i}`),
        numExamplesOf: () => 1,
        // A node that does nothing: this test is about finding the cohort, not training it.
        materialise: async (i) => {
          drawn.add(i);
          if (drawn.size === n) stop.abort();
          return { run: async () => ({ roundsTrained: [] }) } as unknown as BuiltClient;
        },
        checkInsPerSecond: 100_000,
        signal: stop.signal,
        logger: { ...silentLogger, info: (e) => void events.push(String(e.event)), warn: (e) => void events.push(String(e.event)) },
      });
      await population;
      expect(drawn.size).toBe(n);
      expect(events).not.toContain('population.check-in-failed');
    } finally {
      stop.abort();
      coordinator.stop();
      channel.close();
      await run;
      await server.close();
    }
  }, 120_000);
});
