/**
 * Choosing the SecAgg+ neighbourhood size k and Shamir threshold t from the cohort size and the
 * tolerated dropout and corruption fractions.
 *
 * Rule (the two graph conditions of Bell et al. 2020, Sec. 3-4, evaluated with exact binomial
 * tails instead of their asymptotic Chernoff bounds, and a union bound over the n clients):
 *   - security against a malicious server colluding with a gamma fraction of clients: an honest
 *     client reveals one share per neighbour (self-mask or key, never both), so the adversary
 *     holds both secrets of an honest client u only if its c corrupted neighbours satisfy
 *     (k - c) + 2c >= 2t, i.e. c >= 2t - k. Require n * P[Bin(k, gamma) >= 2t - k] <= 2^-sigma
 *     (semi-honest server: c >= t instead). With gamma = 0 this is t > k / 2.
 *   - correctness with a delta dropout fraction: every surviving client needs t surviving honest
 *     neighbours to reveal its shares: n * P[Bin(k, 1 - delta - gamma) < t] <= 2^-eta.
 * The corrupted neighbours of a node in a randomly placed Harary graph are a sample without
 * replacement, whose tails are dominated by the binomial's (Hoeffding 1963, Thm. 4), so the
 * rule is conservative. k grows like O(log n) (Bell et al. Thm. 3.6). We take the smallest even
 * k that meets both conditions, and t the smallest threshold that meets security; if none does,
 * full SecAgg (k = n - 1, Bonawitz et al. 2017) with the secure t, reporting the achieved
 * correctness failure probability (small cohorts cannot meet tight targets at all).
 */

/** Inputs of `chooseSecAggParams`. */
export type SecAggParamsInput = {
  /** Cohort size. */
  n: number;
  /** Tolerated fraction of clients that drop out (0 <= delta < 1). */
  dropoutFraction: number;
  /** Tolerated fraction of clients colluding with the server (default 0). */
  corruptFraction?: number;
  /** Statistical security parameter sigma: adversary success <= 2^-sigma (default 40). */
  securityBits?: number;
  /** Correctness parameter eta: round failure from dropouts <= 2^-eta (default 20). */
  correctnessBits?: number;
  /** Assume the server may deviate from the protocol (default true). */
  maliciousServer?: boolean;
};

/** Output of `chooseSecAggParams`. */
export type SecAggParams = {
  /** Neighbours per client (k = n - 1 is full SecAgg). */
  k: number;
  /** Shamir threshold: shares needed to reconstruct a secret. */
  t: number;
  /** True when k = n - 1 (complete graph). */
  full: boolean;
  /** Upper bound on the adversary's success probability under the rule. */
  securityFailureProb: number;
  /** Upper bound on the probability that dropouts within delta abort the round. */
  correctnessFailureProb: number;
  /** One-line statement of the rule, for plans and ledgers. */
  rule: string;
};

/** log C(k, i) for i = 0..k. */
function logBinomials(k: number): number[] {
  const out = [0];
  for (let i = 1; i <= k; i++) out.push(out[i - 1]! + Math.log(k - i + 1) - Math.log(i));
  return out;
}

/** P[Bin(k, p) >= m], summed in log space (exact up to floating point). */
export function binomialUpperTail(k: number, p: number, m: number): number {
  if (m <= 0) return 1;
  if (m > k) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lc = logBinomials(k);
  let s = 0;
  for (let i = m; i <= k; i++) s += Math.exp(lc[i]! + i * Math.log(p) + (k - i) * Math.log1p(-p));
  return Math.min(1, s);
}

/**
 * Upper bound on the probability that a server colluding with a gamma fraction of the cohort
 * learns both secrets of some honest client, for a plan (n, k, t) chosen by someone else: the
 * security condition of the rule above, n * P[Bin(k, gamma) >= 2t - k] (semi-honest: >= t).
 * Clients evaluate it with their own gamma to refuse plans weaker than they accept.
 */
export function secAggSecurityFailure(n: number, k: number, t: number, corruptFraction: number, maliciousServer = true): number {
  const kk = Math.min(k, n - 1);
  return Math.min(1, n * binomialUpperTail(kk, corruptFraction, maliciousServer ? 2 * t - kk : t));
}

/** Chooses (k, t) for a cohort of n; see the module comment for the rule and its source. */
export function chooseSecAggParams(input: SecAggParamsInput): SecAggParams {
  const { n, dropoutFraction: delta } = input;
  const gamma = input.corruptFraction ?? 0;
  const sigma = input.securityBits ?? 40;
  const eta = input.correctnessBits ?? 20;
  const malicious = input.maliciousServer ?? true;
  if (!Number.isInteger(n) || n < 3) throw new RangeError(`chooseSecAggParams: n must be an integer >= 3, received ${n}`);
  if (!(delta >= 0 && delta < 1)) throw new RangeError(`chooseSecAggParams: dropoutFraction must be in [0, 1), received ${delta}`);
  if (!(gamma >= 0 && gamma < 0.5)) throw new RangeError(`chooseSecAggParams: corruptFraction must be in [0, 0.5), received ${gamma}`);
  if (!(delta + gamma < 1)) throw new RangeError(`chooseSecAggParams: dropoutFraction + corruptFraction must be < 1, received ${delta + gamma}`);
  const secTarget = 2 ** -sigma / n;
  const corTarget = 2 ** -eta / n;
  const secureT = (k: number): number | undefined => {
    for (let t = 1; t <= k; t++) {
      const m = malicious ? 2 * t - k : t;
      if (binomialUpperTail(k, gamma, m) <= secTarget) return t;
    }
    return undefined;
  };
  const failure = (k: number, t: number) => 1 - binomialUpperTail(k, 1 - delta - gamma, t);
  const describe = `Bell et al. 2020 graph conditions with exact binomial tails: n*P[Bin(k,${gamma})>=${malicious ? '2t-k' : 't'}]<=2^-${sigma}, n*P[Bin(k,${1 - delta - gamma})<t]<=2^-${eta}`;
  const result = (k: number, t: number): SecAggParams => ({
    k,
    t,
    full: k === n - 1,
    securityFailureProb: Math.min(1, n * binomialUpperTail(k, gamma, malicious ? 2 * t - k : t)),
    correctnessFailureProb: Math.min(1, n * failure(k, t)),
    rule: describe,
  });
  for (let k = 2; k < n - 1; k += 2) {
    const t = secureT(k);
    if (t !== undefined && failure(k, t) <= corTarget) return result(k, t);
  }
  const kFull = n - 1;
  const tFull = secureT(kFull);
  if (tFull === undefined) {
    throw new RangeError(`chooseSecAggParams: no threshold is secure for n=${n}, corruptFraction=${gamma}, securityBits=${sigma}`);
  }
  return result(kFull, tFull);
}
