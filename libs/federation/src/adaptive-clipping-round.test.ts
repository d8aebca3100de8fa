import { describe, expect, it } from 'vitest';
import { clipL2, adaptiveClipperFor, resolveAdaptiveClipping } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { centralDpAggregation } from './central-dp-aggregation.js';
import type { LocalTrainer } from './client-runner.js';
import { runClient } from './client-runner.js';
import { FederationCoordinator } from './coordinator.js';
import { inProcessConnection } from './in-process-connection.js';
import { CLIP_INDICATOR_METRIC, plannedPrivacy, reportsClipIndicator } from './plan-privacy.js';
import { createStrategy } from './strategy.js';
import { tinyAdapter } from './test-helpers.js';

/** A client whose raw update has L2 norm `norm`; it clips to the plan's C and reports its bit, as the client app does. */
function fixedNormClient(norm: number): LocalTrainer {
  return {
    numExamples: 1,
    async train(plan, global) {
      const delta: NamedTensors = new Map();
      const n = [...global.values()].reduce((a, t) => a + t.data.length, 0);
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(norm / Math.sqrt(n)) });
      const p = plannedPrivacy(plan)!;
      const { clipped, norm: before } = clipL2(delta, p.clipNorm);
      const metrics: Record<string, number> = reportsClipIndicator(plan) ? { [CLIP_INDICATOR_METRIC]: before <= p.clipNorm ? 1 : 0 } : {};
      return { delta: clipped, numExamples: 1, trainLoss: 1, metrics };
    },
  };
}

describe('rounds with adaptive clipping (in-process)', () => {
  it('carry the current clip norm in every plan and move it towards the median update norm', async () => {
    const norms = [0.2, 0.4, 0.6, 0.8, 1.0]; // median 0.6
    const settings = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: norms.length, initialClip: 0.05, learningRate: 0.5 });
    const clipper = adaptiveClipperFor(settings);
    const clips: number[] = [];
    const coordinator = new FederationCoordinator({
      federationId: 'adaptive',
      rounds: 30,
      minClients: norms.length,
      roundDeadlineMs: 5000,
      localSteps: 1,
      learningRate: 0.1,
      batchSize: 1,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: tinyAdapter(0),
      rng: seededRandomBytes('adaptive-coord'),
      aggregation: centralDpAggregation({ clipNorm: settings.initialClip, noiseMultiplier: settings.updateNoiseMultiplier, rng: seededRandomBytes('adaptive-noise'), adaptive: clipper }),
      planExtra: () => {
        clips.push(clipper.clipNorm);
        return {
          privacy: { mode: 'central', clipNorm: clipper.clipNorm, noiseMultiplier: settings.updateNoiseMultiplier, countNoiseStd: settings.countNoiseStd, samplingRate: 1, secureAggregation: false, delta: 1e-5, dimension: 12 },
        };
      },
    });
    const run = coordinator.run();
    await Promise.all(norms.map((n, i) => runClient({ name: `c${i}`, connection: inProcessConnection(coordinator), trainer: fixedNormClient(n), pollMs: 100 })));
    const history = await run;
    expect(history.every((h) => h.status === 'completed')).toBe(true);
    expect(history[0]!.metrics.clipNorm).toBe(0.05);
    expect(history[1]!.metrics.clipNorm).toBe(history[0]!.metrics.nextClipNorm);
    expect(clips[1]!).toBeGreaterThan(clips[0]!); // all clipped at first: C grows
    const late = clips.slice(-10);
    const mean = late.reduce((a, b) => a + b, 0) / late.length;
    // sigma_b = z = 1 on 5 bits is a lot of noise; C still settles inside the norms' range, around the median.
    expect(mean).toBeGreaterThan(0.25);
    expect(mean).toBeLessThan(1.2);
  });

  it('a client whose refusal says stop declines the round and stops', async () => {
    const coordinator = new FederationCoordinator({
      federationId: 'stop',
      rounds: 1,
      minClients: 1,
      roundDeadlineMs: 500,
      maxAttemptsPerRound: 1,
      localSteps: 1,
      learningRate: 0.1,
      batchSize: 1,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: tinyAdapter(0),
      rng: seededRandomBytes('stop'),
    });
    const run = coordinator.run().catch((e: Error) => e);
    const trainer: LocalTrainer = {
      numExamples: 1,
      accept: async () => ({ accept: false, reason: 'refused: budget', stop: 'record-level budget exhausted' }),
      train: () => Promise.reject(new Error('must not train')),
    };
    const r = await runClient({ name: 'c0', connection: inProcessConnection(coordinator), trainer, pollMs: 100 });
    expect(r).toEqual({ roundsTrained: [], stopped: 'record-level budget exhausted' });
    expect(await run).toBeInstanceOf(Error);
    expect(coordinator.rounds[0]!.declined).toEqual(['c0']);
  });
});
