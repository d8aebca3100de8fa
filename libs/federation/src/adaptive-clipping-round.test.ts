import { describe, expect, it } from 'vitest';
import { AdaptiveClipper, clipL2, adaptiveClipperFor, resolveAdaptiveClipping } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { generateIdentity } from '@fedlora/secagg';
import { centralDpAggregation } from './central-dp-aggregation.js';
import type { LocalTrainer } from './client-runner.js';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { CLIP_INDICATOR_METRIC, noiseShareFor, plannedPrivacy, reportsClipIndicator } from './plan-privacy.js';
import { secureAdaptiveClipping } from './secure-adaptive-clipping.js';
import { testCoordinator, tinyAdapter } from './test-helpers.js';

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
    const coordinator = testCoordinator({
      federationId: 'adaptive',
      rounds: 30,
      minClients: norms.length,
      roundDeadlineMs: 5000,
      initialAdapter: tinyAdapter(0),
      rng: seededRandomBytes('adaptive-coord'),
      aggregation: centralDpAggregation({ clipNorm: settings.initialClip, noiseMultiplier: settings.updateNoiseMultiplier, rng: seededRandomBytes('adaptive-noise'), adaptive: clipper }),
      planParts: () => {
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
    const coordinator = testCoordinator({
      federationId: 'stop',
      minClients: 1,
      roundDeadlineMs: 500,
      maxAttemptsPerRound: 1,
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

describe('rounds with adaptive clipping and distributed noise over secure aggregation (in-process)', () => {
  it('sum the centred bits inside the secure vector: the coordinator decodes only the noisy count and moves C', async () => {
    const rng = seededRandomBytes('secure-adaptive');
    const names = ['c1', 'c2', 'c3'];
    const norms = [0.5, 1, 2];
    const identities = new Map(names.map((n) => [n, generateIdentity(rng)]));
    // A tiny count noise (the accountant would charge for it; here it makes the decoded count checkable).
    const countNoiseStd = 0.01;
    const z = 1;
    const clipper = new AdaptiveClipper({ initialClip: 1.5, countNoiseStd, expectedClients: 3, learningRate: 0.2, targetQuantile: 0.5 });
    const coordinator = testCoordinator({
      federationId: 'secure-adaptive',
      rounds: 2,
      minClients: 3,
      maxAttemptsPerRound: 1,
      learningRate: 0,
      initialAdapter: tinyAdapter(0),
      rng,
      aggregation: secureAdaptiveClipping(clipper),
      secureAggregation: {
        identityOf: (n) => identities.get(n)?.publicKey,
        clipNorm: 1.5,
        stageTimeoutMs: 3000,
        rng,
        perRound: () => ({ clipNorm: clipper.clipNorm, noiseStddevPerClient: (z * clipper.clipNorm) / Math.sqrt(3), countNoiseStd, minSurvivors: 3 }),
      },
      planParts: () => ({
        privacy: { mode: 'distributed', clipNorm: clipper.clipNorm, noiseMultiplier: z, countNoiseStd, noise: 'skellam', minSurvivors: 3, samplingRate: 1, secureAggregation: true, delta: 1e-5, dimension: 12 },
      }),
    });
    const run = coordinator.run();
    await Promise.all(
      names.map((name, i) =>
        runClient({
          name,
          connection: inProcessConnection(coordinator),
          trainer: fixedNormClient(norms[i]!),
          pollMs: 100,
          heartbeatMs: 50,
          secure: { identitySecretKey: identities.get(name)!.secretKey, members: new Map([...identities].map(([n, id]) => [n, id.publicKey])), rng, noiseFor: (plan) => noiseShareFor(plan, rng) },
        }),
      ),
    );
    const history = await run;
    expect(history.map((h) => h.status)).toEqual(['completed', 'completed']);
    const [r1, r2] = history;
    // Round 1 at C = 1.5: norms 0.5 and 1 unclipped, 2 clipped -> sum (b - 1/2) = 0.5, fraction 2/3.
    expect(r1!.metrics.clipNorm).toBe(1.5);
    expect(r1!.metrics.noisyUnclippedFraction).toBeCloseTo(2 / 3, 1);
    expect(r1!.metrics.nextClipNorm).toBeCloseTo(1.5 * Math.exp(-0.2 * (r1!.metrics.noisyUnclippedFraction! - 0.5)), 12);
    expect(r2!.metrics.clipNorm).toBe(r1!.metrics.nextClipNorm);
    expect(r2!.metrics.secure).toBe(1);
  }, 60_000);
});
