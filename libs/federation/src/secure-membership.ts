/**
 * A client's own checks of a SecAgg+ plan before it takes part (issue 16, finding 1). The
 * coordinator is not trusted with membership or parameters: the roster must name only members
 * of the list the federation authority signed (member-list.ts), each with its listed key, this
 * client with its own key; and cohort size, threshold and neighbourhood size must meet the
 * minimums in this client's config, the security condition evaluated as chooseSecAggParams does
 * (Bell et al. 2020, Sec. 3-4: n * P[Bin(k, gamma) >= 2t - k] <= 2^-sigma with this client's
 * own gamma and sigma). The graph seed is checked inside the protocol (SecAggClient, 'graph').
 */
import { secAggSecurityFailure } from '@fedlora/secagg';
import type { SecureRoundPlan } from './types.js';

/** The floors a client applies to every secure plan, from its own config. */
export interface SecureMinimums {
  /** Smallest cohort (roster) it joins (default 3). */
  minCohort: number;
  /** Fewest survivors it lets its input be summed with, itself included (default 2; see SecAggClientConfig.minSurvivors). */
  minSurvivors: number;
  /** Fraction of the cohort it assumes may collude with the coordinator (default 0). */
  corruptFraction: number;
  /** sigma: the plan's (k, t) must bound the colluders' success by 2^-sigma (default 40). */
  securityBits: number;
}

/** Defaults of SecureMinimums. */
export const DEFAULT_SECURE_MINIMUMS: SecureMinimums = { minCohort: 3, minSurvivors: 2, corruptFraction: 0, securityBits: 40 };

/**
 * Why this client must refuse the secure plan, or undefined when it may take part.
 * `members`: name -> Ed25519 key from the verified member list; `ownKey`: this client's public key.
 */
export function securePlanProblem(
  sp: SecureRoundPlan,
  clientName: string,
  ownKey: Uint8Array,
  members: ReadonlyMap<string, Uint8Array>,
  min: SecureMinimums = DEFAULT_SECURE_MINIMUMS,
): string | undefined {
  const names = Object.keys(sp.roster ?? {});
  const idNames = Object.keys(sp.ids ?? {});
  if (names.length !== idNames.length || names.some((n) => !(n in sp.ids))) return 'the plan\'s roster and protocol ids name different clients';
  const ids = idNames.map((n) => sp.ids[n]!);
  if (ids.some((id) => !Number.isInteger(id) || id < 1 || id >= 2 ** 31) || new Set(ids).size !== ids.length) return 'the plan gives clients invalid or duplicate protocol ids';
  const own = Buffer.from(ownKey).toString('base64');
  if (sp.roster[clientName] !== own) return `the roster lists ${clientName} with a key that is not this institution's identity key`;
  const outsiders = names.filter((n) => !members.has(n)).sort();
  if (outsiders.length > 0) return `the roster names ${outsiders.join(', ')}, not in the federation's member list (signed by the federation authority)`;
  const swapped = names.filter((n) => Buffer.from(members.get(n)!).toString('base64') !== sp.roster[n]).sort();
  if (swapped.length > 0) return `the roster gives ${swapped.join(', ')} a key other than the one in the federation's member list`;
  const n = names.length;
  if (n < min.minCohort) return `the cohort has ${n} clients; this institution requires at least ${min.minCohort} (secagg.minCohort)`;
  if (n < min.minSurvivors) return `the cohort has ${n} clients, fewer than the ${min.minSurvivors} survivors this institution requires (secagg.minSurvivors)`;
  const { t } = sp;
  // A configured k above n - 1 means the complete graph (the server sends min(k, n - 1)).
  const k = Number.isInteger(sp.k) ? Math.min(sp.k, n - 1) : sp.k;
  if (!Number.isInteger(k) || !Number.isInteger(t) || t < 1 || k < t) return `need integers 1 <= t <= k <= n - 1, received t=${t}, k=${sp.k}, n=${n}`;
  if (k < n - 1 && k % 2 !== 0) return `k must be even below n - 1, received k=${k}`;
  const failure = secAggSecurityFailure(n, k, t, min.corruptFraction, true);
  if (!(failure <= 2 ** -min.securityBits)) {
    return `(k=${k}, t=${t}) for n=${n} bounds a server colluding with ${min.corruptFraction} of the cohort by ${failure.toExponential(2)}, above this institution's 2^-${min.securityBits} (Bell et al. 2020 condition n*P[Bin(k,gamma)>=2t-k])`;
  }
  return undefined;
}
