import { logAbsBinom, logAdd, logChoose, logErfc, logSub } from './log-math.js';

/**
 * Renyi-DP curves eps(alpha) of single mechanisms at one order alpha. Each function is one
 * formula from the literature, cited with its equation; composition (adding curves) and the
 * conversion to (epsilon, delta) live in `accountant.ts` and `conversion.ts`.
 */

/** RDP of the Gaussian mechanism with noise multiplier z (sensitivity 1): alpha / (2 z^2). Mironov 2017, Proposition 7. */
export function rdpGaussian(noiseMultiplier: number, alpha: number): number {
  if (noiseMultiplier === 0) return Infinity;
  return alpha / (2 * noiseMultiplier * noiseMultiplier);
}

/** log A_alpha for integer alpha: Mironov, Talwar, Zhang 2019, "Renyi Differential Privacy of the Sampled Gaussian Mechanism", Section 3.3 (binomial expansion). */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(alpha, i), updated incrementally
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const logCoef = logBinom + i * Math.log(q) + (alpha - i) * Math.log1p(-q);
    const s = logCoef + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/**
 * log A_alpha for fractional alpha: MTZ 2019, Section 3.3, the two convergent series with
 * z0 = sigma^2 log(1/q - 1) + 1/2 (the computation of Opacus' `_compute_log_a_frac` and TF
 * Privacy's `_compute_log_a_frac`, stopping when both terms fall below e^-30).
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  for (let i = 0; ; i++) {
    const { log: logCoef, sign } = logAbsBinom(alpha, i);
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else if (sign < 0) {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30 || i > 100_000) break;
  }
  return logAdd(logA0, logA1);
}

/**
 * RDP of the Poisson-subsampled Gaussian mechanism (sampling rate q, noise multiplier z) at
 * order alpha: log(A_alpha) / (alpha - 1), MTZ 2019, Section 3.3, integer and fractional alpha,
 * as Opacus' `analysis/rdp.py::_compute_rdp` (q = 0 -> 0; z = 0 -> inf; q = 1 -> Gaussian).
 */
export function rdpSampledGaussian(samplingRate: number, noiseMultiplier: number, alpha: number): number {
  const q = samplingRate;
  if (q === 0) return 0;
  if (noiseMultiplier === 0) return Infinity;
  if (q === 1) return rdpGaussian(noiseMultiplier, alpha);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, noiseMultiplier, alpha) : logAFrac(q, noiseMultiplier, alpha);
  return logA / (alpha - 1);
}

/**
 * Upper bound on the RDP of a Poisson-subsampled mechanism M with curve eps(.) at integer
 * alpha >= 2: Zhu & Wang 2019, "Poisson Subsampled Renyi Differential Privacy", Theorem 6:
 * (1/(alpha-1)) log[(1-q)^(alpha-1)(alpha q - q + 1) + C(alpha,2) q^2 (1-q)^(alpha-2) e^{eps(2)}
 *   + 3 sum_{l=3..alpha} C(alpha,l) (1-q)^(alpha-l) q^l e^{(l-1) eps(l)}].
 * Fractional alpha uses ceil(alpha) (RDP is non-decreasing in alpha). The result is also capped
 * by eps(alpha) itself (subsampling never hurts).
 */
export function rdpPoissonSubsampled(q: number, eps: (alpha: number) => number, alpha: number): number {
  if (q === 0) return 0;
  if (q === 1) return eps(alpha);
  if (!Number.isFinite(alpha)) return Infinity;
  const a = Math.max(2, Math.ceil(alpha));
  let s = (a - 1) * Math.log1p(-q) + Math.log(a * q - q + 1);
  s = logAdd(s, logChoose(a, 2) + 2 * Math.log(q) + (a - 2) * Math.log1p(-q) + eps(2));
  for (let l = 3; l <= a; l++) {
    s = logAdd(s, Math.log(3) + logChoose(a, l) + (a - l) * Math.log1p(-q) + l * Math.log(q) + (l - 1) * eps(l));
  }
  return Math.min(s / (a - 1), eps(alpha));
}

/**
 * RDP of the Skellam mechanism with aggregate variance mu per coordinate (the sum of all
 * survivors' Sk shares), integer L1 / L2 sensitivities: Agarwal, Kairouz, Liu 2021, "The
 * Skellam Mechanism for Differentially Private Federated Learning", Theorem 3.5 / Corollary 3.6
 * (scale 1): alpha D2^2/(2 mu) + min(((2 alpha - 1) D2^2 + 6 D1)/(4 mu^2), 3 D1/(2 mu)).
 * Stated for integer alpha > 1; fractional alpha uses ceil(alpha) (a valid upper bound).
 */
export function rdpSkellam(variance: number, l1Sensitivity: number, l2Sensitivity: number, alpha: number): number {
  if (variance === 0) return Infinity;
  const a = Math.max(2, Math.ceil(alpha));
  const d2 = l2Sensitivity * l2Sensitivity;
  return (a * d2) / (2 * variance) + Math.min(((2 * a - 1) * d2 + 6 * l1Sensitivity) / (4 * variance * variance), (3 * l1Sensitivity) / (2 * variance));
}

/**
 * RDP of the (distributed) discrete Gaussian. One discrete Gaussian N_Z(0, sigma^2)^d with
 * integer sensitivity: alpha D2^2 / (2 sigma^2) (Canonne, Kamath, Steinke 2020, Proposition 14
 * and Theorem 15 with tau = 0). The sum of n parties' N_Z(0, sigma^2)^d is not exactly discrete
 * Gaussian; Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism", Theorem 1
 * and Proposition 14, with tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k/(k+1)),
 * l2 = D2/(sqrt(n) sigma), l1 = D1/(sqrt(n) sigma), bounds it by
 * min(alpha/2 l2^2 + tau d, alpha/2 (l2^2 + 2 l1 tau + tau^2 d), alpha/2 (l2 + sqrt(d) tau)^2).
 */
export function rdpDiscreteGaussian(
  opts: { sigma: number; l2Sensitivity: number; l1Sensitivity?: number; parties?: number; dimension?: number },
  alpha: number,
): number {
  const { sigma, l2Sensitivity, parties = 1, dimension = 1 } = opts;
  if (sigma === 0) return Infinity;
  const l1Sensitivity = opts.l1Sensitivity ?? l2Sensitivity * Math.sqrt(dimension);
  let tau = 0;
  for (let k = 1; k < parties; k++) tau += Math.exp(-2 * Math.PI * Math.PI * sigma * sigma * (k / (k + 1)));
  tau *= 10;
  const scale = Math.sqrt(parties) * sigma;
  const l2 = l2Sensitivity / scale;
  const l1 = l1Sensitivity / scale;
  if (tau === 0) return (alpha / 2) * l2 * l2;
  const d = dimension;
  return Math.min((alpha / 2) * l2 * l2 + tau * d, (alpha / 2) * (l2 * l2 + 2 * l1 * tau + tau * tau * d), (alpha / 2) * (l2 + Math.sqrt(d) * tau) ** 2);
}
