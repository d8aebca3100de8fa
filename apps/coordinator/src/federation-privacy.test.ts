import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LocalTrainer } from '@fedlora/federation';
import { CLIP_INDICATOR_METRIC, FederationCoordinator, createStrategy, inProcessConnection, plannedPrivacy, reportsClipIndicator, runClient } from '@fedlora/federation';
import { centralEffectiveNoiseMultiplier, clipL2, epsilonOf, generateLedgerKey, resolveAdaptiveClipping, verifyLedgerFile, type CentralGrid } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { createFederationPrivacy } from './federation-privacy.js';

const adapter = (): NamedTensors => new Map([['w', { shape: [4, 4], data: new Float32Array(16) }]]);

/** A client whose raw update has L2 norm `norm`; it clips to the plan's C and reports its bit, as the client app does. */
function fixedNormClient(norm: number): LocalTrainer {
  return {
    numExamples: 1,
    async train(plan, global) {
      const delta: NamedTensors = new Map([...global].map(([k, t]) => [k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(norm / 4) }]));
      const { clipped, norm: before } = clipL2(delta, plannedPrivacy(plan)!.clipNorm);
      const metrics: Record<string, number> = reportsClipIndicator(plan) ? { [CLIP_INDICATOR_METRIC]: before <= plannedPrivacy(plan)!.clipNorm ? 1 : 0 } : {};
      return { delta: clipped, numExamples: 1, trainLoss: 1, metrics };
    },
  };
}

async function federation(ledgerPath: string, key: Uint8Array, rounds: number) {
  const adaptive = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 3, initialClip: 0.05 });
  const privacy = await createFederationPrivacy({
    config: { mode: 'central', clipNorm: 0.05, noiseMultiplier: 1, samplingRate: 1, secureAggregation: false },
    delta: 1e-5,
    dimension: 16,
    ledgerPath,
    signer: { writer: 'coordinator', secretKey: key },
    rng: seededRandomBytes(`noise:${rounds}`),
    adaptive,
  });
  const coordinator = new FederationCoordinator({
    federationId: 'adaptive',
    rounds,
    minClients: 3,
    roundDeadlineMs: 5000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: adapter(),
    rng: seededRandomBytes('coord'),
    aggregation: privacy.aggregation,
    planParts: () => privacy.planExtra(),
    onRoundEnd: async (s, _a, plan) => {
      await privacy.recordRound(s, plan, new Date(0).toISOString());
    },
  });
  const run = coordinator.run();
  await Promise.all([0.5, 1, 2].map((n, i) => runClient({ name: `c${i}`, connection: inProcessConnection(coordinator), trainer: fixedNormClient(n), pollMs: 50 })));
  return { history: await run, privacy, adaptive };
}

describe('federation privacy with adaptive clipping', () => {
  it('plans each round with the current clip, records C, z_Delta, sigma_b and survivors, and the ledger recomputes the same epsilon', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fed-adaptive-')), 'federation-ledger.jsonl');
    const key = generateLedgerKey().secretKey;
    const { history, privacy, adaptive } = await federation(path, key, 4);
    expect(history.map((h) => h.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const v = verifyLedgerFile(path);
    expect(v.valid).toBe(true);
    const params = v.parsed.map((e) => e.params as { clipNorm: number; noiseMultiplier: number; countNoiseStd: number; survivors: number; adaptive: { nextClipNorm: number } });
    expect(params.map((p) => p.clipNorm)).toEqual(history.map((h) => h.metrics.clipNorm));
    expect(params[0]!.clipNorm).toBe(0.05);
    for (let r = 1; r < params.length; r++) expect(params[r]!.clipNorm).toBe(params[r - 1]!.adaptive.nextClipNorm);
    expect(params[3]!.clipNorm).toBeGreaterThan(0.05); // every norm was above the first clip: C grew
    for (const p of params) expect(p).toMatchObject({ noiseMultiplier: adaptive.updateNoiseMultiplier, countNoiseStd: adaptive.countNoiseStd, survivors: 3 });
    // Four rounds with z_Delta and sigma_b cost what four Gaussian rounds with z = 1 cost (Andrew et al. 2021, Theorem 1),
    // once z_Delta is lowered to the z' its grid and clip slack leave (central-grid.ts): a hair more.
    const fixed = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 1, steps: 4 }], { delta: 1e-5 }).epsilon;
    const graded = v.parsed.map((e) => {
      const p = e.params as { clipNorm: number; noiseMultiplier: number; countNoiseStd: number; grid: CentralGrid };
      const z = centralEffectiveNoiseMultiplier(p.noiseMultiplier, p.clipNorm, p.grid);
      return { mechanism: 'sampled_gaussian' as const, noiseMultiplier: (z ** -2 + (2 * p.countNoiseStd) ** -2) ** -0.5, samplingRate: 1, steps: 1 };
    });
    const expected = epsilonOf(graded, { delta: 1e-5 }).epsilon;
    expect(v.epsilon).toBeCloseTo(expected, 9);
    expect(privacy.epsilon()).toBeCloseTo(expected, 9);
    expect(expected).toBeGreaterThan(fixed);
    expect(expected / fixed).toBeLessThan(1.001);
    expect(privacy.clipNorm()).toBe(params[3]!.adaptive.nextClipNorm);

    // A restarted coordinator resumes the clip from its ledger.
    const reopened = await createFederationPrivacy({
      config: { mode: 'central', clipNorm: 0.05, noiseMultiplier: 1, samplingRate: 1, secureAggregation: false },
      delta: 1e-5,
      dimension: 16,
      ledgerPath: path,
      signer: { writer: 'coordinator', secretKey: key },
      rng: seededRandomBytes('again'),
      adaptive,
    });
    expect(reopened.clipNorm()).toBe(params[3]!.adaptive.nextClipNorm);
    expect(reopened.planExtra().privacy.clipNorm).toBe(params[3]!.adaptive.nextClipNorm);
  });

  it('distributed: sizes each secure round for the current clip, z_Delta and the count noise', async () => {
    const adaptive = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 3, initialClip: 0.2 });
    const privacy = await createFederationPrivacy({
      config: { mode: 'distributed', clipNorm: 0.2, noiseMultiplier: 1, secureAggregation: true, minSurvivors: 3, noise: 'skellam', samplingRate: 1 },
      delta: 1e-5,
      dimension: 16,
      ledgerPath: join(mkdtempSync(join(tmpdir(), 'fed-adaptive-')), 'l.jsonl'),
      signer: { writer: 'coordinator', secretKey: generateLedgerKey().secretKey },
      rng: seededRandomBytes('x'),
      adaptive,
    });
    expect(privacy.perRound!()).toEqual({ clipNorm: 0.2, noiseStddevPerClient: (adaptive.updateNoiseMultiplier * 0.2) / Math.sqrt(3), countNoiseStd: 1, minSurvivors: 3 });
    expect(privacy.planExtra().privacy).toMatchObject({ mode: 'distributed', clipNorm: 0.2, noiseMultiplier: adaptive.updateNoiseMultiplier, countNoiseStd: 1 });
    expect(privacy.aggregation).toBeDefined();
  });

  it('refuses adaptive clipping with central noise behind secure aggregation, saying why', async () => {
    const adaptive = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 3, initialClip: 1 });
    await expect(
      createFederationPrivacy({
        config: { mode: 'central', clipNorm: 1, noiseMultiplier: 1, secureAggregation: true },
        delta: 1e-5,
        dimension: 16,
        ledgerPath: join(mkdtempSync(join(tmpdir(), 'fed-adaptive-')), 'l.jsonl'),
        signer: { writer: 'coordinator', secretKey: generateLedgerKey().secretKey },
        rng: seededRandomBytes('x'),
        adaptive,
      }),
    ).rejects.toThrow(/needs each clipped-indicator bit, which secure aggregation hides: use distributed noise/);
  });
});
