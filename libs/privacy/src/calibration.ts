import { epsilonOf, type PrivacyEvent } from './accountant.js';
import type { Conversion } from './conversion.js';
import { dpRoundParams, type DpFedAvgConfig } from './dp-fedavg.js';
import { roundEvents } from './round-events.js';
import { DEFAULT_GRID_FRACTION, gridSensitivity } from './samplers.js';

/**
 * Budget first: the noise multiplier that spends a target (epsilon, delta) over a planned run, as
 * Opacus's `make_private_with_epsilon` / `get_noise_multiplier` do (Opacus, opacus/accountants/
 * utils.py: bisection on sigma through the accountant). Here the bisection runs through the same
 * RDP accountant and the same recorded parameters the ledger and `fedlora audit` recompute
 * (`roundEvents`), so what is calibrated is exactly what is accounted: for DP-SGD the multiplier
 * left after the noise grid (`gridSensitivity`), for DP-FedAvg the round parameters of
 * `dpRoundParams` (central Gaussian, or distributed Skellam / discrete Gaussian planned for the
 * fewest survivors).
 *
 * A delta above 1/(number of units) is refused: a mechanism that publishes one random unit's data
 * outright is (0, 1/n)-DP, so such a delta promises nothing (Dwork and Roth 2014, "The Algorithmic
 * Foundations of Differential Privacy", Section 2.3: delta must be less than the inverse of any
 * polynomial in the size of the database).
 */

/** What a calibration assumed and found; recorded with the plan and beside the ledger. */
export interface NoiseCalibration {
  targetEpsilon: number;
  delta: number;
  /** The noise multiplier to use. */
  noiseMultiplier: number;
  /** Epsilon at delta of the planned run with that multiplier (<= targetEpsilon). */
  epsilon: number;
  /** The planned compositions: DP-SGD steps (rounds x local steps), or DP-FedAvg rounds. */
  steps: number;
  /** Poisson sampling rate of units (DP-SGD: expected units per step / units; DP-FedAvg: of institutions). */
  samplingRate: number;
  /** Units the delta is checked against (documents, patients, or institutions). */
  units: number;
}

/** Throws a RangeError unless 0 < delta <= 1 / units. */
export function assertDeltaForUnits(delta: number, units: number, unitName = 'units'): void {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), received ${delta}`);
  if (!Number.isInteger(units) || units < 1) throw new RangeError(`the number of ${unitName} must be a positive integer, received ${units}`);
  if (delta > 1 / units) {
    throw new RangeError(
      `delta ${delta} is above 1/${units} (one over the number of ${unitName}): a mechanism that reveals one random unit's data outright meets that delta, so it protects nothing; use delta <= ${(1 / units).toPrecision(3)} (1e-5 or less is usual)`,
    );
  }
}

/**
 * A z with target - epsilonTolerance < epsilonAt(z) <= target (or the smallest z within
 * `tolerance` of the boundary): epsilon is non-increasing in z, so bracket by doubling from 1 and
 * narrow the bracket by regula falsi with the Illinois modification (bisection when a side is
 * infinite), keeping epsilonAt(hi) <= target throughout. Each accountant call can take a second
 * at large sampling rates, so fewer calls than plain bisection matter.
 */
export function bisectNoiseMultiplier(epsilonAt: (z: number) => number, targetEpsilon: number, opts: { tolerance?: number; epsilonTolerance?: number } = {}): number {
  const tolerance = opts.tolerance ?? 1e-7;
  const epsTol = opts.epsilonTolerance ?? 1e-4;
  if (!(targetEpsilon > 0) || !Number.isFinite(targetEpsilon)) throw new RangeError(`target epsilon must be a finite number > 0, received ${targetEpsilon}`);
  let lo = 0;
  let fLo = Number.POSITIVE_INFINITY; // epsilon(0) - target
  let hi = 1;
  let fHi = epsilonAt(hi) - targetEpsilon;
  while (!(fHi <= 0)) {
    [lo, fLo] = [hi, fHi];
    hi *= 2;
    if (hi > 1e6) throw new RangeError(`no noise multiplier below 1e6 reaches epsilon ${targetEpsilon}: raise the budget or plan fewer steps`);
    fHi = epsilonAt(hi) - targetEpsilon;
  }
  let side = 0;
  let gap = fHi; // the true epsilon(hi) - target (fHi may be halved by the Illinois step)
  for (let i = 0; i < 200 && hi - lo > tolerance && gap < -epsTol; i++) {
    const z = Number.isFinite(fLo) ? hi - (fHi * (hi - lo)) / (fHi - fLo) : (lo + hi) / 2;
    const mid = z > lo && z < hi ? z : (lo + hi) / 2;
    const f = epsilonAt(mid) - targetEpsilon;
    if (f <= 0) {
      [hi, fHi, gap] = [mid, f, f];
      if (side === 1) fLo /= 2; // Illinois: the kept side has been kept twice
      side = 1;
    } else {
      [lo, fLo] = [mid, f];
      if (side === -1) fHi /= 2;
      side = -1;
    }
  }
  return hi;
}

/** Options of calibrateDpSgd. */
export interface DpSgdCalibrationOptions {
  targetEpsilon: number;
  delta: number;
  /** Privacy units in the data (documents, patients, or sequences). */
  units: number;
  /** Expected units per step (q = min(1, this / units)). */
  expectedUnitsPerStep: number;
  /** Planned steps over the whole run: rounds x local steps. */
  steps: number;
  /** Trainable values (the grid's sqrt(d) h term depends on it). */
  dimension: number;
  orders?: string | readonly number[];
  conversion?: Conversion;
}

/**
 * The DP-SGD noise multiplier z for a target epsilon: the accounted run is `steps` sampled-Gaussian
 * compositions at q with the multiplier z' = z C / gridSensitivity(C, d, z C 2^-16) that
 * `dpSgdParams` records (independent of C), so epsilon(z') <= target.
 */
export function calibrateDpSgd(o: DpSgdCalibrationOptions): NoiseCalibration {
  assertDeltaForUnits(o.delta, o.units, 'privacy units');
  if (!(o.expectedUnitsPerStep > 0)) throw new RangeError(`expected units per step must be > 0, received ${o.expectedUnitsPerStep}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`planned steps must be a positive integer, received ${o.steps}`);
  const samplingRate = Math.min(1, o.expectedUnitsPerStep / o.units);
  const epsilonAt = (z: number) => epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: accountedDpSgdMultiplier(z, o.dimension), samplingRate, steps: o.steps }], opts(o)).epsilon;
  const noiseMultiplier = bisectNoiseMultiplier(epsilonAt, o.targetEpsilon);
  return { targetEpsilon: o.targetEpsilon, delta: o.delta, noiseMultiplier, epsilon: epsilonAt(noiseMultiplier), steps: o.steps, samplingRate, units: o.units };
}

/** z' = z C / (C + sqrt(d) z C 2^-16): what `dpSgdParams` accounts for z (C cancels). */
export function accountedDpSgdMultiplier(z: number, dimension: number): number {
  return z > 0 ? z / gridSensitivity(1, dimension, z * DEFAULT_GRID_FRACTION) : 0;
}

/** Options of calibrateDpFedAvg. */
export interface DpFedAvgCalibrationOptions {
  targetEpsilon: number;
  delta: number;
  /** Institutions in the federation (the delta is checked against them). */
  institutions: number;
  /** Planned rounds. */
  rounds: number;
  /** The DP-FedAvg config without its noise multiplier. */
  config: Omit<DpFedAvgConfig, 'noiseMultiplier'>;
  /** Trainable values (distributed mode's integer sensitivities depend on it). */
  dimension: number;
  orders?: string | readonly number[];
  conversion?: Conversion;
}

/**
 * The DP-FedAvg noise multiplier z for a target institution-level epsilon over `rounds` rounds,
 * through `dpRoundParams` -> `roundEvents` as each round is recorded (distributed noise planned
 * for `minSurvivors`, the worst case that still completes a round).
 */
export function calibrateDpFedAvg(o: DpFedAvgCalibrationOptions): NoiseCalibration {
  assertDeltaForUnits(o.delta, o.institutions, 'institutions');
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new RangeError(`planned rounds must be a positive integer, received ${o.rounds}`);
  const survivors = o.config.mode === 'distributed' ? o.config.minSurvivors! : o.institutions;
  const epsilonAt = (z: number) => {
    const one = roundEvents(dpRoundParams({ ...o.config, noiseMultiplier: z }, { survivors, dimension: o.dimension }));
    const all: PrivacyEvent[] = [];
    for (let r = 0; r < o.rounds; r++) all.push(...one);
    return epsilonOf(all, opts(o)).epsilon;
  };
  const noiseMultiplier = bisectNoiseMultiplier(epsilonAt, o.targetEpsilon);
  return { targetEpsilon: o.targetEpsilon, delta: o.delta, noiseMultiplier, epsilon: epsilonAt(noiseMultiplier), steps: o.rounds, samplingRate: o.config.samplingRate ?? 1, units: o.institutions };
}

function opts(o: { delta: number; orders?: string | readonly number[]; conversion?: Conversion }): { delta: number; orders?: string | readonly number[]; conversion?: Conversion } {
  return { delta: o.delta, ...(o.orders !== undefined ? { orders: o.orders } : {}), ...(o.conversion ? { conversion: o.conversion } : {}) };
}
