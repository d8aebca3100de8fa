import type { RandomBytes } from '@fedlora/tensor';
import { shuffleInPlace, uniform01 } from '@fedlora/tensor';

/** How the coordinator draws a round's cohort from the live institutions. */
export type SamplingMode = 'uniform' | 'poisson';

/**
 * What the coordinator drew for one round, recorded in the round plan (`RoundPlan.sampling`)
 * so the ledger can say which sampling rate it accounted and why.
 */
export interface CohortSampling {
  /** 'all': no `clientsPerRound`; 'uniform': fixed-size draw without replacement; 'poisson': each institution independently. */
  mode: 'all' | SamplingMode;
  /** Live institutions the cohort was drawn from. */
  population: number;
  /** Cohort size asked for (uniform: exact; poisson: expected = rate x population). */
  expectedCohort: number;
  /** Probability that a given institution is in the cohort: expectedCohort / population. */
  rate: number;
  /** Cohort size actually drawn. */
  drawn: number;
}

/**
 * Draws a cohort from `live` (sorted names) with the coordinator's CSPRNG. `clientsPerRound` is
 * a count (>= 1) or a fraction in (0, 1) of the live institutions.
 * - uniform: a fixed-size subset, every subset of that size equally likely (Fisher-Yates), never
 *   fewer than `minClients` when the population allows it.
 * - poisson: each institution joins independently with probability q = expected / population
 *   (McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private Recurrent Language
 *   Models", Algorithm 1: the sampling the sampled-Gaussian accountant of Mironov, Talwar, Zhang
 *   2019 assumes). The draw is not redrawn when small: conditioning on its size would change q.
 */
export function drawCohort(
  live: string[],
  clientsPerRound: number | undefined,
  mode: SamplingMode,
  rng: RandomBytes,
  minClients: number,
): { cohort: string[]; sampling: CohortSampling } {
  const population = live.length;
  if (clientsPerRound === undefined || population === 0) {
    return { cohort: live, sampling: { mode: 'all', population, expectedCohort: population, rate: 1, drawn: population } };
  }
  if (!(clientsPerRound > 0)) throw new RangeError(`clientsPerRound must be a count >= 1 or a fraction in (0, 1), received ${clientsPerRound}`);
  if (mode === 'poisson') {
    const rate = clientsPerRound < 1 ? clientsPerRound : Math.min(1, clientsPerRound / population);
    const cohort = live.filter(() => uniform01(rng) < rate);
    return { cohort, sampling: { mode, population, expectedCohort: rate * population, rate, drawn: cohort.length } };
  }
  const size = clientsPerRound < 1 ? Math.min(population, Math.max(minClients, Math.ceil(clientsPerRound * population))) : Math.min(population, Math.floor(clientsPerRound));
  const cohort = shuffleInPlace([...live], rng).slice(0, size).sort();
  return { cohort, sampling: { mode, population, expectedCohort: size, rate: size / population, drawn: size } };
}
