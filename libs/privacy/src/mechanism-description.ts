import type { RoundPrivacyParams } from './round-events.js';

/** A person's description of a recorded release: which mechanism, and how much noise. */
export interface MechanismDescription {
  /** e.g. "Gaussian, central", "Skellam, distributed over 3 survivors", "DP-SGD (sampled Gaussian)". */
  mechanism: string;
  /** e.g. "z = 1, C = 0.1 (std 0.1 on the sum)". */
  noise: string;
}

const num = (x: number): string => (Number.isInteger(x) ? String(x) : x.toPrecision(3).replace(/\.?0+$/, ''));

/**
 * Describes the parameters a ledger entry records, for charts and reports. Noise is given as the
 * noise multiplier z and clip C where the mechanism is Gaussian (std z C on the sum; McMahan et
 * al. 2018), and as the total integer-domain variance for distributed noise (each survivor adds
 * its share; Agarwal, Kairouz, Liu 2021 for Skellam, Kairouz, Liu, Steinke 2021 for DDG).
 */
export function describeMechanism(p: RoundPrivacyParams): MechanismDescription {
  switch (p.mode) {
    case 'central':
      return {
        mechanism: `Gaussian, central${p.samplingRate < 1 ? `, sampled q = ${num(p.samplingRate)}` : ''}${p.adaptive ? ', adaptive clip' : ''}`,
        noise: `z = ${num(p.noiseMultiplier)}, C = ${num(p.clipNorm)} (std ${num(p.noiseMultiplier * p.clipNorm)} on the sum)${p.countNoiseStd ? `, count std ${num(p.countNoiseStd)}` : ''}`,
      };
    case 'distributed':
      return {
        mechanism: `${p.noise === 'skellam' ? 'Skellam' : 'discrete Gaussian'}, distributed over ${p.survivors} survivors${p.secureAggregation ? ' (secure aggregation)' : ''}${p.adaptive ? ', adaptive clip' : ''}`,
        noise: `variance ${num(p.survivors * p.perClientVariance)} (integer domain, scale ${num(p.scale)}), C = ${num(p.clipNorm)}`,
      };
    case 'dp-sgd':
      return { mechanism: `DP-SGD, sampled Gaussian (q = ${num(p.samplingRate)}, ${p.steps} steps)`, noise: `z = ${num(p.noiseMultiplier)}, C = ${num(p.clipNorm)}` };
    default:
      return { mechanism: 'unknown', noise: 'unknown' };
  }
}
