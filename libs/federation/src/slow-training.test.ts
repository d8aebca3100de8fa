import { describe, expect, it } from 'vitest';
import { generateIdentity } from '@fedlora/secagg';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { LocalTrainer } from './client-runner.js';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { testCoordinator } from './test-helpers.js';

const rng = seededRandomBytes('slow-training-test');
const NAMES = ['c1', 'c2', 'c3'];
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const STAGE_TIMEOUT_MS = 3000;
const LIVENESS_MS = 2 * STAGE_TIMEOUT_MS;

/**
 * A clock that training moves forward: each local step "takes" STEP_MS of the federation's time
 * at once (as a step that blocks the event loop would), so training outlasts every stage
 * timeout and the liveness window whatever the real speed of the machine.
 */
function warpClock(): Clock & { warp(ms: number): void } {
  let offset = 0;
  return { now: () => systemClock.now() + offset, sleep: systemClock.sleep, warp: (ms) => (offset += ms) };
}

/** Trains `steps` steps of STEP_MS each (clock time), reporting progress between steps; delta = value. */
function slowTrainer(clock: ReturnType<typeof warpClock>, steps: number, value: number, trainLoss: number, numExamples: number): LocalTrainer {
  const STEP_MS = 2 * STAGE_TIMEOUT_MS;
  return {
    numExamples,
    async train(_plan, global, progress) {
      for (let s = 1; s <= steps; s++) {
        clock.warp(STEP_MS);
        await progress?.(s);
      }
      const delta: NamedTensors = new Map();
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) });
      return { delta, numExamples, trainLoss };
    },
  };
}

describe('a secure round whose clients train longer than every stage timeout', () => {
  it('completes with every client: training is bounded by the round deadline, liveness by the heartbeats sent between steps', async () => {
    const clock = warpClock();
    const coordinator = testCoordinator({
      federationId: 'slow',
      minClients: 3,
      maxAttemptsPerRound: 1,
      minAvailableClients: 3,
      roundDeadlineMs: 3_600_000,
      learningRate: 0,
      rng,
      clock,
      secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 10, stageTimeoutMs: STAGE_TIMEOUT_MS, livenessMs: LIVENESS_MS, rng },
    });
    const run = coordinator.run();
    // Different lengths: when c1 sends its masked input, c2 and c3 have trained for many
    // liveness windows of clock time and are still training.
    const steps = [5, 20, 40];
    const clients = NAMES.map((name, i) =>
      runClient({
        name,
        connection: inProcessConnection(coordinator),
        trainer: slowTrainer(clock, steps[i]!, 0.01 * (i + 1), 1 + i, 10 * (i + 1)),
        pollMs: 100,
        heartbeatMs: STAGE_TIMEOUT_MS, // clock time: one heartbeat per step (each step takes 2 stage timeouts)
        clock,
        secure: { identitySecretKey: identities.get(name)!.secretKey, members: new Map([...identities].map(([n, id]) => [n, id.publicKey])), rng },
      }),
    );
    const [h] = await run;
    await Promise.all(clients);
    expect(h!.status).toBe('completed');
    expect(h!.participantNames).toEqual(NAMES);
    expect(h!.endedAt - h!.startedAt).toBeGreaterThan(steps[2]! * 2 * STAGE_TIMEOUT_MS); // the round did outlast every timeout
    const a = coordinator.adapter.get('lora_A')!.data;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - (i + 0.02))).toBeLessThan(1e-3);
    // The survivors' metrics are the ones they reported with their masked inputs.
    expect(h!.numExamples).toBe(60);
    expect(h!.trainLoss).toBeCloseTo((1 * 10 + 2 * 20 + 3 * 30) / 60, 12);
  });
});
