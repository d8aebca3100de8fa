import { describe, expect, it } from 'vitest';
import type { SimulationReport } from '@fedlora/cli';
import { ffaMinusLora, planPoints, pointFromReport, withImprovementKept, type PrivacyUtilityPoint } from './privacy-utility-points.js';
import { privacyUtilityHtml } from './privacy-utility-html.js';

const plan = { recordEpsilons: [1, 8, Infinity], institutionEpsilons: [8], variants: ['lora', 'ffa'] as Array<'lora' | 'ffa'>, clients: 3, rounds: 3, seed: 'fedlora', secagg: true, extra: [] };
const run = { wallSeconds: 12.5, load: { start: 1, end: 2 } };

/** The fields of a simulate report that a point reads. */
function report(): SimulationReport {
  return { initialEvalLoss: 4.6, finalEvalLoss: 4.55, rounds: [], clients: [], updateParameters: 24_576 } as unknown as SimulationReport;
}

describe('planPoints', () => {
  const specs = planPoints(plan);

  it('runs each record-level point as the no-DP command plus the budget alone, so simulate applies its DP-SGD defaults', () => {
    const clear = specs.find((s) => s.unit === 'none' && s.variant === 'lora')!;
    const eps8 = specs.find((s) => s.unit === 'record' && s.variant === 'lora' && s.epsilon === 8)!;
    expect(eps8.args).toEqual([...clear.args, '--dp-sgd-epsilon', '8']);
    for (const s of specs) for (const flag of ['--batch-size', '--local-steps', '--lr', '--dp-sgd-max-sequences']) expect(s.args).not.toContain(flag);
  });

  it('gives every point the same clients, rounds, seed and secure aggregation, and its variant', () => {
    expect(specs).toHaveLength(2 * (3 + 1));
    for (const s of specs) {
      expect(s.args.slice(0, 8)).toEqual(['simulate', '--clients', '3', '--rounds', '3', '--seed', 'fedlora', '--secagg']);
      expect(s.args[s.args.indexOf('--lora-variant') + 1]).toBe(s.variant);
    }
    expect(planPoints({ ...plan, secagg: false })[0]!.args).not.toContain('--secagg');
  });

  it('runs institution-level points with central DP-FedAvg calibrated from the budget', () => {
    const inst = specs.filter((s) => s.unit === 'institution');
    expect(inst.map((s) => s.variant)).toEqual(['lora', 'ffa']);
    expect(inst[0]!.args.slice(-4)).toEqual(['--dp-mode', 'central', '--dp-epsilon', '8']);
  });
});

describe('pointFromReport', () => {
  const r = report();
  Object.assign(r, {
    rounds: [
      { round: 1, attempt: 1, status: 'aborted', evalLoss: null, recordEpsilon: undefined },
      { round: 1, attempt: 2, status: 'completed', evalLoss: 4.58, recordEpsilon: 6.4 },
      { round: 2, attempt: 1, status: 'completed', evalLoss: 4.55, recordEpsilon: 8 },
    ],
    clients: [{ dpSgdCalibration: { noiseMultiplier: 0.5 } }, { dpSgdCalibration: { noiseMultiplier: 0.7 } }],
  });

  it('takes the spent epsilon of the last completed round, the mean calibrated multiplier and the perplexity', () => {
    const p = pointFromReport({ unit: 'record', variant: 'lora', epsilon: 8, args: ['simulate'] }, r, run);
    expect(p.spentEpsilon).toBe(8);
    expect(p.noiseMultiplier).toBeCloseTo(0.6, 12);
    expect(p.evalLossPerRound).toEqual([4.58, 4.55]);
    expect(p.completedRounds).toBe(2);
    expect(p.abortedAttempts).toBe(1);
    expect(p.perplexity).toBeCloseTo(Math.exp(4.55), 12);
  });

  it('reports no multiplier and no spend for the no-DP point', () => {
    const p = pointFromReport({ unit: 'none', variant: 'lora', epsilon: null, args: ['simulate'] }, r, run);
    expect(p.noiseMultiplier).toBeNull();
    expect(p.spentEpsilon).toBeNull();
  });
});

describe('withImprovementKept', () => {
  const point = (unit: PrivacyUtilityPoint['unit'], variant: 'lora' | 'ffa', epsilon: number | null, finalEvalLoss: number): PrivacyUtilityPoint => ({
    ...pointFromReport({ unit, variant, epsilon, args: [] }, report(), run),
    finalEvalLoss,
  });

  it('divides each gain by the same variant\'s no-DP gain', () => {
    const pts = withImprovementKept([point('none', 'lora', null, 4.5), point('record', 'lora', 8, 4.55), point('none', 'ffa', null, 4.58), point('record', 'ffa', 8, 4.59)]);
    expect(pts[1]!.improvementKept).toBeCloseTo(0.5, 12);
    expect(pts[3]!.improvementKept).toBeCloseTo(0.5, 12);
    expect(ffaMinusLora(pts, [8, Infinity])).toEqual([
      { epsilon: 8, lossDifference: expect.closeTo(0.04, 12) },
      { epsilon: null, lossDifference: expect.closeTo(0.08, 12) },
    ]);
  });

  it('leaves it null without a no-DP run of that variant', () => {
    expect(withImprovementKept([point('record', 'ffa', 8, 4.55)])[0]!.improvementKept).toBeNull();
  });
});

describe('privacyUtilityHtml', () => {
  it('draws the curves and lists every point with its command, a failed one with its error', async () => {
    const ok = pointFromReport({ unit: 'record', variant: 'lora', epsilon: 8, args: ['simulate', '--dp-sgd-epsilon', '8'] }, report(), run);
    const failed: PrivacyUtilityPoint = { ...ok, epsilon: 1, initialEvalLoss: Number.NaN, finalEvalLoss: null, perplexity: null, error: 'timed out after 1800 s' };
    const html = await privacyUtilityHtml({ settings: {}, points: [failed, ok] }, '2026-12-06T00:00:00Z');
    expect(html).toContain('<svg');
    expect(html).toContain('fedlora simulate --dp-sgd-epsilon 8');
    expect(html).toContain('timed out after 1800 s');
  }, 120_000);
});
