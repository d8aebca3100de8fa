import { describe, expect, it } from 'vitest';
import { CENTRAL_CLIP_TOLERANCE, CentralGridSum, centralGrid, centralSensitivity } from './central-grid.js';
import { clipMargin } from './grid-clipped-sum.js';
import { dpRoundParams } from './dp-fedavg.js';
import { roundEvents } from './round-events.js';
import { epsilonOf } from './accountant.js';

const central = (d: number, z = 1, C = 1) => dpRoundParams({ mode: 'central', clipNorm: C, noiseMultiplier: z, samplingRate: 1, secureAggregation: false }, { survivors: 3, dimension: d });
/** The L2 sensitivity a round's events account: z C / z_event. */
const accountedSensitivity = (d: number, z = 1, C = 1) => (z * C) / (roundEvents(central(d, z, C))[0] as { noiseMultiplier: number }).noiseMultiplier;

describe('central DP-FedAvg accounts its grid and its clip slack (issue 16, finding 11)', () => {
  it('at d = 24,576 and z = 1 the round is accounted with z about 0.25% lower, as the issue measured', () => {
    const e = roundEvents(central(24_576))[0] as { noiseMultiplier: number };
    const expected = 1 / ((1 + 1e-4) * (1 + clipMargin(24_576)) + Math.sqrt(24_576) * 2 ** -16);
    expect(e.noiseMultiplier).toBeCloseTo(expected, 12);
    expect(1 - e.noiseMultiplier).toBeGreaterThan(0.0024);
    expect(1 - e.noiseMultiplier).toBeLessThan(0.0026);
    // Fifty such rounds cost more than fifty at z = 1 would claim.
    const claimed = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 1, steps: 50 }], { delta: 1e-5 }).epsilon;
    const real = epsilonOf(Array.from({ length: 50 }, () => roundEvents(central(24_576))).flat(), { delta: 1e-5 }).epsilon;
    expect(real / claimed - 1).toBeGreaterThan(0.002);
  });

  it('records d, h and the tolerance so the audit recomputes the same events', () => {
    expect(central(1024, 1.5, 0.3)).toMatchObject({ grid: { dimension: 1024, gridStep: 1.5 * 0.3 * 2 ** -16, clipTolerance: CENTRAL_CLIP_TOLERANCE } });
  });

  it('an update at the slack and on half grid steps moves the integer sum by more than C, but not more than is accounted', () => {
    // A malicious institution: every coordinate at (m - 1/2) h, which rounds up to m h, with the norm just within the check.
    const d = 1000;
    const C = 1;
    const grid = centralGrid(1, C, d);
    const h = grid.gridStep;
    // X = C (1 + tol) / (sqrt(d) h) = 2072.65 grid steps per coordinate at most: (floor(X) + 1/2) h passes and rounds to floor(X) + 1 > X.
    const X = (C * (1 + CENTRAL_CLIP_TOLERANCE)) / (Math.sqrt(d) * h);
    expect(X % 1).toBeGreaterThanOrEqual(0.5);
    const v = (Math.floor(X) + 0.5) * h;
    const update = new Map([['w', { shape: [d], data: new Float32Array(d).fill(v) }]]);
    const norm = Math.sqrt(d) * Math.fround(v);
    expect(norm).toBeLessThanOrEqual(C * (1 + CENTRAL_CLIP_TOLERANCE)); // the coordinator's check lets it through
    const sum = new CentralGridSum([{ name: 'w', shape: [d] }], h);
    sum.add(update);
    const moved = Math.sqrt(sum.counts[0]!.reduce((a, k) => a + (k * h) ** 2, 0));
    expect(moved).toBeGreaterThan(C * (1 + CENTRAL_CLIP_TOLERANCE)); // beyond C and the slack: the grid adds sensitivity
    expect(moved).toBeLessThanOrEqual(accountedSensitivity(d, 1, C)); // ... which the ledger accounts
    expect(accountedSensitivity(d, 1, C)).toBeCloseTo(centralSensitivity(C, grid), 12);
  });

  it('behind secure aggregation also accounts the integer encoding: sqrt(d) / scale more sensitivity', () => {
    const d = 32_768;
    const scale = 2_000;
    const p = dpRoundParams({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, secureAggregation: true, scale }, { survivors: 3, dimension: d });
    expect(p).toMatchObject({ grid: { dimension: d, encodingL2: Math.sqrt(d) / scale } });
    const z = (roundEvents(p)[0] as { noiseMultiplier: number }).noiseMultiplier;
    expect(z).toBeCloseTo(1 / ((1 + 1e-4) * (1 + clipMargin(d)) + Math.sqrt(d) * 2 ** -16 + Math.sqrt(d) / scale), 12);
    expect(z).toBeLessThan((roundEvents(central(d))[0] as { noiseMultiplier: number }).noiseMultiplier);
  });

  it('keeps the counts exact integers and refuses a grid so fine they would not be', () => {
    const sum = new CentralGridSum([{ name: 'w', shape: [2] }], 2 ** -10);
    sum.add(new Map([['w', { data: [0.5, -0.25] }]]));
    sum.add(new Map([['w', { data: [0.5, 0.25] }]]));
    expect([...sum.counts[0]!]).toEqual([1024, 0]);
    const fine = new CentralGridSum([{ name: 'w', shape: [1] }], 2 ** -60);
    expect(() => fine.add(new Map([['w', { data: [1] }]]))).toThrow(/would no longer be exact/);
  });
});
