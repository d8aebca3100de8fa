/**
 * Which client-sampling rate an institution-level DP-FedAvg round may account, and why.
 *
 * Amplification by sampling (the sampled Gaussian of Mironov, Talwar, Zhang 2019, "Renyi
 * Differential Privacy of the Sampled Gaussian Mechanism", used for DP-FedAvg by McMahan,
 * Ramage, Talwar, Zhang 2018, Algorithm 1) holds only if the cohort really is a Poisson sample
 * hidden from the adversary. So:
 * - central mode, Poisson draw: the trusted coordinator samples and adds the noise, so the round
 *   is accounted with q = expected cohort / population;
 * - central mode, fixed-size (uniform) draw: the Poisson bound does not apply to sampling without
 *   replacement under add/remove adjacency, so no amplification is claimed (q = 1);
 * - distributed mode: institutions do not trust the coordinator and cannot verify its sampling,
 *   so no amplification is claimed (q = 1) whatever was drawn;
 * - no `clientsPerRound`: every institution takes part (q = 1).
 * An institution's own ledger records the draw its plan announced (RoundPlan.sampling) but never
 * accounts amplification it cannot check: where the federation may claim q < 1 the institution
 * records basis `not-verifiable-by-institution` with q = 1 (institutionSampling).
 */
export type SamplingBasis = 'all-institutions' | 'poisson-by-trusted-coordinator' | 'fixed-size-not-amplified' | 'distributed-not-verifiable' | 'not-verifiable-by-institution';

/** The cohort draw as the ledger records it, next to the sampling rate it accounted. */
export interface SamplingRecord {
  basis: SamplingBasis;
  /** How the coordinator drew the cohort. */
  mode: 'all' | 'uniform' | 'poisson';
  /** Live institutions it drew from. */
  population: number;
  /** Cohort asked for (Poisson: expected size). */
  expectedCohort: number;
  /** Cohort actually drawn. */
  drawn: number;
}

/** The sampling rate a round may account and the reason, from the DP mode and the draw. */
export function accountedSampling(
  dpMode: 'central' | 'distributed',
  draw: { mode: 'all' | 'uniform' | 'poisson'; population: number; expectedCohort: number; drawn: number },
): { samplingRate: number; sampling: SamplingRecord } {
  const record = (basis: SamplingBasis): SamplingRecord => ({ basis, mode: draw.mode, population: draw.population, expectedCohort: draw.expectedCohort, drawn: draw.drawn });
  if (draw.mode === 'all' || draw.population <= 0 || draw.expectedCohort >= draw.population) return { samplingRate: 1, sampling: record('all-institutions') };
  if (dpMode === 'distributed') return { samplingRate: 1, sampling: record('distributed-not-verifiable') };
  if (draw.mode === 'uniform') return { samplingRate: 1, sampling: record('fixed-size-not-amplified') };
  return { samplingRate: draw.expectedCohort / draw.population, sampling: record('poisson-by-trusted-coordinator') };
}

/**
 * What an institution records of the draw its plan announced: the federation's basis when that
 * already accounts q = 1, else `not-verifiable-by-institution` (the draw happened at the
 * coordinator, which knows who took part; the institution accounts q = 1).
 */
export function institutionSampling(
  dpMode: 'central' | 'distributed',
  draw: { mode: 'all' | 'uniform' | 'poisson'; population: number; expectedCohort: number; drawn: number },
): { samplingRate: 1; sampling: SamplingRecord } {
  const federation = accountedSampling(dpMode, draw);
  return { samplingRate: 1, sampling: federation.samplingRate < 1 ? { ...federation.sampling, basis: 'not-verifiable-by-institution' } : federation.sampling };
}

/**
 * Auditor's check of a recorded draw: recomputes q and the basis from the DP mode and the draw;
 * returns what is wrong, or undefined when the entry accounts what it may.
 */
export function checkAccountedSampling(dpMode: 'central' | 'distributed', samplingRate: number, sampling: SamplingRecord): string | undefined {
  if (sampling.basis === 'not-verifiable-by-institution') {
    if (samplingRate !== 1) return `sampling basis not-verifiable-by-institution accounts q = 1, but the entry accounts ${samplingRate}`;
    if (accountedSampling(dpMode, sampling).samplingRate >= 1) return `sampling basis not-verifiable-by-institution for a ${dpMode}-mode ${sampling.mode} draw that claims no amplification (expected ${accountedSampling(dpMode, sampling).sampling.basis})`;
    return undefined;
  }
  const expected = accountedSampling(dpMode, sampling);
  if (expected.sampling.basis !== sampling.basis) return `sampling basis ${sampling.basis} does not follow from a ${dpMode}-mode ${sampling.mode} draw (expected ${expected.sampling.basis})`;
  if (Math.abs(expected.samplingRate - samplingRate) > 1e-12) return `accounts sampling rate ${samplingRate} but a ${dpMode}-mode ${sampling.mode} draw of ${sampling.expectedCohort} of ${sampling.population} allows ${expected.samplingRate} (${sampling.basis})`;
  return undefined;
}
