import { afterEach, describe, expect, it } from 'vitest';
import type { Stage } from '@fedlora/secagg';
import { STAGES, chooseSecAggParams, generateIdentity } from '@fedlora/secagg';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import type { LocalTrainer, RoundPlan } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, runClient } from '@fedlora/federation';
import { GrpcConnection, createSharedChannel } from './client.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';

// SecAgg+ (Bell et al. 2020) at a cohort where the graph is sparse (k < n - 1): 100 institutions
// over real gRPC on 127.0.0.1, sharing one channel as a simulated population does, 10 of them
// vanishing at random stages. (The full-size run, a cohort of 1,000, is measured in the README.)
const N = 100;
const DROPPED = 10;
const DIM = 48;
const rng = seededRandomBytes('secagg-plus-dropout');
const names = Array.from({ length: N }, (_, i) => `inst-${String(i + 1).padStart(3, '0')}`);
const identities = new Map(names.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));

/** Institution i's update: a distinct value per coordinate, so the mean tells who is in the sum. */
const valueOf = (i: number, j: number) => Math.sin(i * 0.37 + j * 0.11) * 0.5;

function trainer(i: number): LocalTrainer {
  return {
    numExamples: 1,
    async train(_plan: RoundPlan, global: NamedTensors) {
      const delta: NamedTensors = new Map();
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: Float32Array.from({ length: t.data.length }, (_, j) => valueOf(i, j)) });
      return { delta, numExamples: 1, trainLoss: 1 };
    },
  };
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('SecAgg+ with 10% of a cohort of 100 dropping at random stages (gRPC on loopback)', () => {
  it('completes with the plain mean of the survivors, on the sparse graph chooseSecAggParams gives', async () => {
    // Ten institutions, each vanishing at a stage drawn uniformly (seeded).
    const dropAt = new Map<string, Stage>();
    while (dropAt.size < DROPPED) dropAt.set(names[uniformInt(rng, N)]!, STAGES[uniformInt(rng, STAGES.length)]!);
    const plans: RoundPlan[] = [];
    // A secure sum holds at least t + 1 inputs; a larger minimum would raise t (and k) above the graph's (thresholdForSurvivors).
    const expected = chooseSecAggParams({ n: N, dropoutFraction: 0.1 });
    const coordinator = new FederationCoordinator({
      federationId: 'secagg-plus',
      rounds: 1,
      minClients: expected.t + 1,
      minAvailableClients: N,
      maxAttemptsPerRound: 1,
      roundDeadlineMs: 580_000,
      localSteps: 1,
      learningRate: 0,
      batchSize: 1,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: new Map([['w', { shape: [DIM], data: new Float32Array(DIM) }]]),
      rng,
      onRoundStart: (plan) => void plans.push(plan),
      // dropoutFraction 0.1: the graph and threshold come from the Bell et al. bounds for n = 100.
      // 30 s of silence before an institution counts as gone: a hundred institutions' key exchanges share this process's
      // event loop with the rest of the suite, so an honest one may be seconds late on a busy machine (12 s failed at load 15).
      secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 10, dropoutFraction: 0.1, stageTimeoutMs: 30_000, livenessMs: 30_000, rng },
    });
    server = await startFederationServer(coordinator, { address: '127.0.0.1:0' });
    const address = `127.0.0.1:${server.port}`;
    const channel = createSharedChannel({ address });
    const run = coordinator.run();
    const clients = names.map((name, i) =>
      runClient({
        name,
        connection: new GrpcConnection({ address, channel }),
        trainer: trainer(i),
        pollMs: 200,
        heartbeatMs: 500,
        secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng, dropAtFor: () => dropAt.get(name) },
      }),
    );
    const [h] = await run;
    await Promise.all(clients);
    channel.close();

    expect(plans[0]!.secagg).toMatchObject({ k: expected.k, t: expected.t });
    expect(expected.k).toBeLessThan(N - 1); // SecAgg+, not the complete graph
    expect(h!.status).toBe('completed');
    // Who vanished before sending its masked input is not in the sum; who vanished later is (its masks are recovered).
    const early = new Set<Stage>(['advertise', 'share', 'receipt', 'collect']);
    const survivors = h!.participantNames;
    for (const [name, stage] of dropAt) expect(survivors.includes(name)).toBe(!early.has(stage));
    expect(survivors.length).toBe(N - [...dropAt.values()].filter((s) => early.has(s)).length);
    // The aggregate is the plain mean of the survivors' updates, to the encoding's quantization error.
    const idx = survivors.map((n) => names.indexOf(n));
    const got = coordinator.adapter.get('w')!.data;
    for (let j = 0; j < DIM; j++) {
      const mean = idx.reduce((a, i) => a + valueOf(i, j), 0) / idx.length;
      expect(Math.abs(got[j]! - mean)).toBeLessThan(1e-4);
    }
  }, 600_000);
});
