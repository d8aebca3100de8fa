import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { epsilonOf } from './accountant.js';
import { ADAPTIVE_CLIPPING_DEFAULTS, adaptiveClipperFor, resolveAdaptiveClipping } from './adaptive-clipping.js';
import { dpRoundParams } from './dp-fedavg.js';
import { roundEvents } from './round-events.js';
import { centralEffectiveNoiseMultiplier, type CentralGrid } from './central-grid.js';
import { Ledger } from './ledger.js';
import { generateLedgerKey } from './ledger-format.js';
import { verifyLedgerFile } from './ledger-verify.js';

/** Runs `rounds` rounds of adaptive clipping over m norms a round drawn uniformly from [0, 2]; returns C per round. */
function track(targetQuantile: number, rounds: number, seed: string): number[] {
  const s = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 100, initialClip: 0.1, targetQuantile });
  const clipper = adaptiveClipperFor(s);
  const norms = seededRandomBytes(`norms:${seed}`);
  const noise = seededRandomBytes(`noise:${seed}`);
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const bits = Array.from({ length: 100 }, () => clipper.indicator(2 * uniform01(norms)));
    out.push(clipper.update(bits, noise).clipNorm);
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('adaptive clipping over rounds (Andrew et al. 2021)', () => {
  it('moves the clip to the median of the update norms, with the paper defaults and count noise', () => {
    const c = track(0.5, 300, 'median');
    expect(c[0]).toBeGreaterThan(0.1); // every update was clipped: C grows
    expect(mean(c.slice(-100))).toBeGreaterThan(0.9);
    expect(mean(c.slice(-100))).toBeLessThan(1.1); // the median of U[0, 2] is 1
  });

  it('tracks another target quantile (0.8 of U[0, 2] is 1.6)', () => {
    const c = track(0.8, 300, 'q80');
    expect(mean(c.slice(-100))).toBeGreaterThan(1.45);
    expect(mean(c.slice(-100))).toBeLessThan(1.75);
  });
});

describe('resolveAdaptiveClipping', () => {
  it("uses the paper's defaults: gamma 0.5, eta_C 0.2, sigma_b = m/20", () => {
    const s = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 100, initialClip: 0.5 });
    expect(s).toMatchObject({ targetQuantile: 0.5, learningRate: 0.2, countNoiseStd: 5, expectedClients: 100, noiseMultiplier: 1, initialClip: 0.5 });
    expect(ADAPTIVE_CLIPPING_DEFAULTS.countNoiseStdPerClient).toBe(1 / 20);
  });

  it('pins z_Delta = (z^-2 - (2 sigma_b)^-2)^(-1/2) (Theorem 1)', () => {
    // m = 100, z = 1: sigma_b = 5, z_Delta = (1 - 1/100)^(-1/2).
    expect(resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 100, initialClip: 1 }).updateNoiseMultiplier).toBeCloseTo(1.005037815259212, 14);
    // Three institutions: m/20 = 0.15 < z/2, so sigma_b = z = 1 and z_Delta = 2/sqrt(3).
    const small = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 3, initialClip: 1 });
    expect(small.countNoiseStd).toBe(1);
    expect(small.updateNoiseMultiplier).toBeCloseTo(1.1547005383792515, 14);
  });

  it('accounts the round (sum with z_Delta plus the count) exactly as a Gaussian round with z', () => {
    const s = resolveAdaptiveClipping({ noiseMultiplier: 1.1, expectedClients: 3, initialClip: 0.2 });
    const params = dpRoundParams(
      { mode: 'central', clipNorm: 0.2, noiseMultiplier: s.updateNoiseMultiplier, countNoiseStd: s.countNoiseStd, samplingRate: 1, secureAggregation: false },
      { survivors: 3, dimension: 10 },
    );
    const [event] = roundEvents(params);
    expect(event).toMatchObject({ mechanism: 'sampled_gaussian', samplingRate: 1, steps: 1 });
    // Theorem 1 with z_Delta lowered to the z' the central grid and clip slack leave (central-grid.ts).
    const zDelta = centralEffectiveNoiseMultiplier(s.updateNoiseMultiplier, 0.2, (params as { grid: CentralGrid }).grid);
    const z = (zDelta ** -2 + (2 * s.countNoiseStd) ** -2) ** -0.5;
    expect((event as { noiseMultiplier: number }).noiseMultiplier).toBeCloseTo(z, 12);
    expect(Math.abs(z / 1.1 - 1)).toBeLessThan(2e-4);
    const adaptive = epsilonOf(roundEvents(params), { delta: 1e-5 }).epsilon;
    const fixed = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: z, samplingRate: 1, steps: 1 }], { delta: 1e-5 }).epsilon;
    expect(adaptive).toBeCloseTo(fixed, 9);
  });

  it('refuses a count noise too small for the noise multiplier, naming it', () => {
    expect(() => resolveAdaptiveClipping({ noiseMultiplier: 2, expectedClients: 100, initialClip: 1, countNoiseStd: 1 })).toThrow(/countNoiseStd \(sigma_b\) must be > noiseMultiplier\/2 = 1/);
    expect(() => resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 3, initialClip: 1, targetQuantile: 1 })).toThrow(/targetQuantile must be in \(0, 1\)/);
  });

  it('distributed: the bit coordinate S (2b - 1) is a second integer release with sensitivity S and noise std 2 S sigma_b over the survivors', () => {
    const cfg = { mode: 'distributed' as const, clipNorm: 1, noiseMultiplier: 1.2, countNoiseStd: 1, countScale: 64, scale: 64, minSurvivors: 3, secureAggregation: true };
    const params = dpRoundParams(cfg, { survivors: 4, dimension: 8 });
    expect(params).toMatchObject({ mode: 'distributed', count: { noiseStd: 1, scale: 64, perClientVariance: (2 * 64) ** 2 / 3 } });
    const events = roundEvents(params);
    expect(events).toHaveLength(2);
    expect(events[1]).toEqual({ mechanism: 'skellam', variance: (4 * (2 * 64) ** 2) / 3, l1Sensitivity: 64, l2Sensitivity: 64, steps: 1 });
    // For Gaussian noise the composition of the sum (z_Delta) and the count (2 sigma_b) is Theorem 1's z.
    const zDelta = resolveAdaptiveClipping({ noiseMultiplier: 1, expectedClients: 3, initialClip: 1 }).updateNoiseMultiplier;
    const composed = epsilonOf([{ mechanism: 'gaussian', noiseMultiplier: zDelta, steps: 1 }, { mechanism: 'gaussian', noiseMultiplier: 2, steps: 1 }], { delta: 1e-5 }).epsilon;
    expect(composed).toBeCloseTo(epsilonOf([{ mechanism: 'gaussian', noiseMultiplier: 1, steps: 1 }], { delta: 1e-5 }).epsilon, 9);
  });

  it('distributed adaptive clipping without the bit coordinate scale is refused, saying what is missing', () => {
    expect(() =>
      dpRoundParams({ mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, countNoiseStd: 1, scale: 64, minSurvivors: 3, secureAggregation: true }, { survivors: 3, dimension: 8 }),
    ).toThrow(/needs the integer countScale of the securely summed bit coordinate/);
  });
});

describe('the ledger of adaptive clipping', () => {
  const round = (clipNorm: number, noisyUnclippedFraction: number, nextClipNorm: number) => ({
    mode: 'central' as const,
    clipNorm,
    noiseMultiplier: 1.2,
    countNoiseStd: 1,
    samplingRate: 1,
    survivors: 3,
    adaptive: { targetQuantile: 0.5, learningRate: 0.2, expectedClients: 3, noisyUnclippedFraction, nextClipNorm },
  });
  const next = (c: number, f: number) => c * Math.exp(-0.2 * (f - 0.5));

  async function ledgerOf(params: ReturnType<typeof round>[]): Promise<string> {
    const path = join(mkdtempSync(join(tmpdir(), 'adaptive-ledger-')), 'federation-ledger.jsonl');
    const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: generateLedgerKey().secretKey, role: 'coordinator' }, { delta: 1e-5 });
    for (const [i, p] of params.entries()) await ledger.append({ kind: 'round', round: i + 1, unit: 'institution', params: p });
    return path;
  }

  it('verifies when every round uses the clip the previous one set', async () => {
    const c2 = next(0.1, 0.2);
    const v = verifyLedgerFile(await ledgerOf([round(0.1, 0.2, c2), round(c2, 0.9, next(c2, 0.9))]));
    expect(v.problems).toEqual([]);
  });

  it('names a round whose clip is not the one the previous round set, or whose next clip does not follow the rule', async () => {
    const c2 = next(0.1, 0.2);
    const v = verifyLedgerFile(await ledgerOf([round(0.1, 0.2, c2), round(0.5, 0.9, next(0.5, 0.9)), round(next(0.5, 0.9), 0.5, 7)]));
    expect(v.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^entry 1 \(line 2\): adaptive clipping: clipNorm 0.5 is not the 0.1\d* the previous round set/),
      expect.stringMatching(/^entry 2 \(line 3\): adaptive clipping: nextClipNorm 7 does not follow from clipNorm/),
    ]);
  });
});
