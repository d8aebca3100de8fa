import { describe, expect, it } from 'vitest';
import { calibrateNoise, epsilonOf, type PrivacyEvent } from './accountant.js';
import { accountedDpSgdMultiplier, assertDeltaForUnits, calibrateDpFedAvg, calibrateDpSgd } from './calibration.js';
import { dpRoundParams } from './dp-fedavg.js';
import { roundEvents } from './round-events.js';

const D = 24_576; // trainable values of the tiny model's LoRA at r 8

describe('budget-first noise calibration', () => {
  it('DP-SGD: the calibrated multiplier reproduces the target epsilon to 1e-3 through the accountant, as the ledger records it', () => {
    for (const [target, units, perStep, steps] of [
      [8, 150, 24, 45],
      [1, 10_000, 64, 2250],
      [3, 600, 32, 300],
    ] as const) {
      const c = calibrateDpSgd({ targetEpsilon: target, delta: 1e-5, units, expectedUnitsPerStep: perStep, steps, dimension: D });
      // What the trainer records for z: mode dp-sgd with the grid's multiplier z', `steps` compositions at q.
      const events = roundEvents({ mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: accountedDpSgdMultiplier(c.noiseMultiplier, D), samplingRate: perStep / units, steps });
      const eps = epsilonOf(events, { delta: 1e-5 }).epsilon;
      expect(eps).toBeLessThanOrEqual(target);
      expect(target - eps).toBeLessThan(1e-3);
      expect(c.epsilon).toBe(eps);
      expect(c.samplingRate).toBe(perStep / units);
    }
  });

  it('DP-SGD: agrees with the Opacus-pinned calibration (get_noise_multiplier, eps 8, q 0.04, 2250 steps) once the grid is accounted', () => {
    const opacusGrid = calibrateNoise({ targetEpsilon: 8, delta: 1e-5, samplingRate: 0.04, steps: 2250, orders: 'opacus', tolerance: 1e-6 });
    const c = calibrateDpSgd({ targetEpsilon: 8, delta: 1e-5, units: 1000, expectedUnitsPerStep: 40, steps: 2250, dimension: D, orders: 'opacus' });
    expect(accountedDpSgdMultiplier(c.noiseMultiplier, D)).toBeCloseTo(opacusGrid, 5);
    expect(c.noiseMultiplier).toBeGreaterThan(opacusGrid); // the grid costs a little noise: z > z'
    expect(c.noiseMultiplier).toBeLessThan(1.425307617 * 1.01); // Opacus's own answer, plus < 1% for the grid
  });

  it('DP-FedAvg: central and distributed multipliers reproduce the institution-level target to 1e-3', () => {
    const central = calibrateDpFedAvg({ targetEpsilon: 8, delta: 1e-5, institutions: 3, rounds: 3, config: { mode: 'central', clipNorm: 0.1, secureAggregation: true }, dimension: D });
    // What the ledger records: the round's events, with the grid's and the clip slack's z' (central-grid.ts).
    const centralOne = roundEvents(dpRoundParams({ mode: 'central', clipNorm: 0.1, secureAggregation: true, noiseMultiplier: central.noiseMultiplier }, { survivors: 3, dimension: D }));
    const centralEps = epsilonOf(([] as PrivacyEvent[]).concat(centralOne, centralOne, centralOne), { delta: 1e-5 }).epsilon;
    expect(8 - centralEps).toBeLessThan(1e-3);
    expect(centralEps).toBeLessThanOrEqual(8);
    const cfg = { mode: 'distributed' as const, clipNorm: 0.1, scale: 2000, minSurvivors: 2, noise: 'skellam' as const, secureAggregation: true };
    const dist = calibrateDpFedAvg({ targetEpsilon: 8, delta: 1e-5, institutions: 3, rounds: 3, config: cfg, dimension: D });
    const one = roundEvents(dpRoundParams({ ...cfg, noiseMultiplier: dist.noiseMultiplier }, { survivors: 2, dimension: D }));
    const distEps = epsilonOf(([] as PrivacyEvent[]).concat(one, one, one), { delta: 1e-5 }).epsilon;
    expect(distEps).toBeLessThanOrEqual(8);
    expect(8 - distEps).toBeLessThan(1e-3);
    expect(dist.noiseMultiplier).toBeGreaterThan(central.noiseMultiplier); // integer rounding and Skellam cost a little
  });

  it('refuses a delta above 1/(number of units), naming the bound', () => {
    expect(() => calibrateDpSgd({ targetEpsilon: 8, delta: 0.01, units: 150, expectedUnitsPerStep: 8, steps: 10, dimension: D })).toThrow(/delta 0.01 is above 1\/150 \(one over the number of privacy units\).*use delta <= 0.00667/);
    expect(() => assertDeltaForUnits(0.5, 3, 'institutions')).toThrow(/above 1\/3 \(one over the number of institutions\)/);
    expect(() => assertDeltaForUnits(1e-5, 150)).not.toThrow();
  });
});
