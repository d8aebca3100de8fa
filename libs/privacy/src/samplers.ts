import type { RandomBytes } from '@fedlora/tensor';
import { ExactRandom, isqrt, rationalAtLeast, type Rational } from './exact-bits.js';
import { LargePoissonSampler } from './poisson-exact.js';

/**
 * Privacy noise samplers. All of them are exact in integer arithmetic: they consume uniform
 * random bits from a CSPRNG passed in by the caller and never form a floating-point random
 * number (Mironov 2012, "On significance of the least significant bits for differential
 * privacy"). Float parameters (a variance, a Poisson rate) are first turned into a rational
 * rounded *up* to a multiple of 2^-20 (see `rationalAtLeast`), so the noise actually drawn is
 * at least the noise accounted for.
 */

function checkCount(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be an integer >= 0, received ${n}`);
}

/** Largest variance whose draws fit an Int32Array with overwhelming probability (std <= 2^31 / 40). */
export const MAX_INT32_VARIANCE = (2 ** 31 / 40) ** 2;

function checkInt32Variance(v: number, what: string): void {
  if (v > MAX_INT32_VARIANCE) throw new RangeError(`${what} ${v} is too large for 32-bit integer noise (max ${MAX_INT32_VARIANCE})`);
}

function checkPositive(x: number, what: string): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) {
    throw new RangeError(`${what} must be a finite number > 0, received ${String(x)}`);
  }
}

/**
 * One draw of the discrete Gaussian N_Z(0, sigma^2) with rational sigma^2 = a/b:
 * Canonne, Kamath, Steinke 2020, Algorithm 3 (discrete Laplace proposal with scale
 * t = floor(sigma) + 1, Algorithm 2, accepted with probability exp(-(|Z| - sigma^2/t)^2 / (2 sigma^2))).
 */
export function discreteGaussianOnce(sigma2: Rational, t: bigint, r: ExactRandom): bigint {
  const { num: a, den: b } = sigma2;
  if (t < 2n ** 40n) return BigInt(discreteGaussianSmallT(sigma2, Number(t), r));
  for (;;) {
    // Discrete Laplace with scale t (CKS Algorithm 2, s = 1).
    const u = r.belowBig(t);
    if (!r.bernoulliExp(u, t)) continue;
    let v = 0n;
    while (r.bernoulliExp(1n, 1n)) v += 1n;
    const x = u + t * v;
    const negative = r.bit();
    if (negative && x === 0n) continue;
    // gamma = (|Z| - sigma^2/t)^2 / (2 sigma^2) = (x t b - a)^2 / (2 a b t^2)
    const diff = x * t * b - a;
    if (r.bernoulliExp(diff * diff, 2n * a * b * t * t)) return negative ? -x : x;
  }
}

/**
 * The same algorithm with the discrete Laplace stage in safe integers (t < 2^40), returning a
 * number: only the final test's gamma = (x t b - a)^2 / (2 a b t^2) is formed in BigInt (its
 * numerator exceeds 2^53 on fine grids), and x t b - a is formed in doubles when that is exact.
 * It reads the same coins as `discreteGaussianOnce` with a BigInt t.
 */
function discreteGaussianSmallT(sigma2: Rational, t: number, r: ExactRandom): number {
  const { num: a, den: b } = sigma2;
  const tb = BigInt(t);
  const den = 2n * a * b * tb * tb;
  const aF = Number(a);
  const tbF = t * Number(b);
  const safe = Number.isSafeInteger(aF) && Number.isSafeInteger(tbF);
  const denF = Number(den);
  for (;;) {
    const u = r.below(t);
    if (!r.bernoulliExpSmall(u, t)) continue;
    let v = 0;
    while (r.bernoulliExpOfMinusOne()) v++;
    const x = u + t * v;
    const negative = r.bit();
    if (negative && x === 0) continue;
    const xtb = x * tbF;
    if (safe && xtb <= Number.MAX_SAFE_INTEGER) {
      // diff = x t b - a is exact in doubles; gamma's double has relative error < 2^-50.
      const diff = xtb - aF;
      if (r.bernoulliExpOfSquare(diff, den, denF)) return negative ? -x : x;
      continue;
    }
    const diff = BigInt(x) * tb * b - a;
    if (r.bernoulliExp(diff * diff, den)) return negative ? -x : x;
  }
}

/**
 * n independent draws of the discrete Gaussian N_Z(0, sigma2) (variance parameter sigma2; the
 * actual variance is slightly below sigma2, CKS 2020 Corollary 9). Exact: CKS 2020 Algorithm 3.
 * sigma2 is rounded up to a multiple of 2^-20 before sampling.
 */
export function sampleDiscreteGaussian(sigma2: number, n: number, rng: RandomBytes): Int32Array {
  checkPositive(sigma2, 'sigma2');
  checkInt32Variance(sigma2, 'sigma2');
  checkCount(n);
  const s2 = rationalAtLeast(sigma2, 'sigma2');
  const t = isqrt(s2.num / s2.den) + 1n;
  const r = new ExactRandom(rng);
  const out = new Int32Array(n);
  if (t < 2n ** 40n) {
    const tn = Number(t);
    for (let i = 0; i < n; i++) out[i] = discreteGaussianSmallT(s2, tn, r);
  } else {
    for (let i = 0; i < n; i++) out[i] = Number(discreteGaussianOnce(s2, t, r));
  }
  return out;
}

/**
 * Poisson(lambda) for rational lambda = a/b <= 1, exactly: propose K ~ Geometric(1/2) on
 * {0, 1, ...} (fair coins) and accept with probability (2 lambda)^K / (2 K!) <= 1; the accepted
 * K has probability proportional to lambda^K / K!, i.e. it is Poisson(lambda). Acceptance rate
 * e^lambda / 4 (>= 1/4).
 */
function poissonAtMostOne(a: bigint, b: bigint, r: ExactRandom): number {
  if (a === 0n) return 0;
  for (;;) {
    let k = 0;
    while (r.bit()) k++;
    let num = 1n;
    let den = 2n;
    for (let i = 1; i <= k; i++) {
      num *= 2n * a;
      den *= b * BigInt(i);
    }
    if (r.bernoulli(num, den)) return k;
  }
}

/** Rates from which the O(sqrt(mu)) rejection sampler is used instead of summing Poisson(1) draws. */
export const LARGE_POISSON_THRESHOLD = 16;

/**
 * An exact Poisson(rate) sampler: below LARGE_POISSON_THRESHOLD the sum of floor(rate) exact
 * Poisson(1) draws and one Poisson(frac) draw (Poisson laws add); above it the rejection
 * sampler of `LargePoissonSampler` (O(sqrt(rate)) coins per draw).
 */
export function poissonSampler(rate: Rational): (r: ExactRandom) => number {
  const whole = rate.num / rate.den;
  if (whole >= BigInt(LARGE_POISSON_THRESHOLD)) {
    const large = new LargePoissonSampler(rate);
    return (r) => large.sample(r);
  }
  const frac = rate.num - whole * rate.den;
  return (r) => {
    let total = poissonAtMostOne(frac, rate.den, r);
    for (let i = 0n; i < whole; i++) total += poissonAtMostOne(1n, 1n, r);
    return total;
  };
}

/** n independent exact Poisson(mu) draws (mu rounded up to a multiple of 2^-20). */
export function samplePoisson(mu: number, n: number, rng: RandomBytes): Int32Array {
  checkCount(n);
  const draw = poissonSampler(rationalAtLeast(mu, 'mu'));
  const r = new ExactRandom(rng);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = draw(r);
  return out;
}

/**
 * n independent symmetric Skellam draws Poisson(mu) - Poisson(mu) (mean 0, variance 2 mu),
 * each Poisson exact: the noise of the Skellam mechanism, Agarwal, Kairouz, Liu 2021,
 * "The Skellam Mechanism for Differentially Private Federated Learning", Definition 3.1.
 * Sums of independent Skellams are Skellam, so n clients adding Sk(mu/n) give Sk(mu).
 * Cost per draw is O(sqrt(mu)) uniform integers for large mu.
 */
export function sampleSkellam(mu: number, n: number, rng: RandomBytes): Int32Array {
  checkCount(n);
  checkInt32Variance(2 * mu, 'Skellam variance 2 mu');
  const draw = poissonSampler(rationalAtLeast(mu, 'mu'));
  const r = new ExactRandom(rng);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = draw(r) - draw(r);
  return out;
}

/** Default grid step of `gaussianOnGrid` relative to sigma: sigma * 2^-16. */
export const DEFAULT_GRID_FRACTION = 2 ** -16;

/**
 * Gaussian noise for float values, sampled exactly: `gridStep * N_Z(0, (sigma/gridStep)^2)`, a
 * discrete Gaussian on the grid gridStep*Z (CKS 2020, Algorithm 3, scaled). Named "Gaussian on a
 * grid" everywhere it is used. The value the noise is added to must itself lie on the grid
 * (use `addGaussianOnGrid`), otherwise the output reveals the value modulo the grid step;
 * rounding to the grid adds up to sqrt(d)*gridStep to the L2 sensitivity (`gridSensitivity`).
 */
export function gaussianOnGrid(sigma: number, n: number, rng: RandomBytes, gridStep = sigma * DEFAULT_GRID_FRACTION): Float64Array {
  const z = gaussianOnGridCounts(sigma, n, rng, gridStep);
  for (let i = 0; i < n; i++) z[i] = z[i]! * gridStep;
  return z;
}

/**
 * The integers Z of `gaussianOnGrid` (its noise is Z * gridStep): n exact draws of
 * N_Z(0, (sigma/gridStep)^2), CKS 2020 Algorithm 3, from the same random bytes in the same order.
 * For sums kept as grid counts, so that count + Z is formed exactly before any scaling.
 */
export function gaussianOnGridCounts(sigma: number, n: number, rng: RandomBytes, gridStep = sigma * DEFAULT_GRID_FRACTION): Float64Array {
  checkPositive(sigma, 'sigma');
  checkPositive(gridStep, 'gridStep');
  checkCount(n);
  const ratio = sigma / gridStep;
  const s2 = rationalAtLeast(ratio * ratio, '(sigma/gridStep)^2');
  const t = isqrt(s2.num / s2.den) + 1n;
  const r = new ExactRandom(rng);
  const out = new Float64Array(n);
  if (t < 2n ** 40n) {
    const tn = Number(t);
    for (let i = 0; i < n; i++) out[i] = discreteGaussianSmallT(s2, tn, r);
  } else {
    for (let i = 0; i < n; i++) out[i] = Number(discreteGaussianOnce(s2, t, r));
  }
  return out;
}

/**
 * Rounds every value to the nearest multiple of gridStep and adds `gaussianOnGrid` noise, so the
 * result lies on the grid (no leakage through the low bits). Returns a new Float64Array.
 */
export function addGaussianOnGrid(
  values: ArrayLike<number>,
  sigma: number,
  rng: RandomBytes,
  gridStep = sigma * DEFAULT_GRID_FRACTION,
): Float64Array {
  const noise = gaussianOnGrid(sigma, values.length, rng, gridStep);
  for (let i = 0; i < noise.length; i++) noise[i] = (Math.round(values[i]! / gridStep) + Math.round(noise[i]! / gridStep)) * gridStep;
  return noise;
}

/** L2 sensitivity after rounding d coordinates to the grid: l2 + sqrt(d) * gridStep (each side moves <= step/2 per coordinate). */
export function gridSensitivity(l2: number, dimension: number, gridStep: number): number {
  return l2 + Math.sqrt(dimension) * gridStep;
}
